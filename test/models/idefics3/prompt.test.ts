// The prompt expansion against strings written out by hand from
// transformers' _prompt_split_image / _prompt_single_image, and its errors.
import assert from "node:assert/strict";
import { test } from "node:test";
import { expandImageTokens, imagePromptString, imageTokenCount, tilePositionToken } from "../../../src/models/idefics3/prompt.js";

const F = "<fake_token_around_image>";
const G = "<global-img>";
const I = "<image>";

test("a single image (0 x 0): fake, global, seq image tokens, fake", () => {
  assert.equal(imagePromptString(0, 0, 3), "<fake_token_around_image><global-img><image><image><image><fake_token_around_image>");
  assert.equal(imageTokenCount(0, 0, 64), 64);
});

test("a split image: per tile fake + row/col + tokens, a newline per row, then a blank line and the global image", () => {
  // 2 rows x 2 cols, 2 tokens per tile, written out in full.
  const want =
    "<fake_token_around_image><row_1_col_1><image><image>" +
    "<fake_token_around_image><row_1_col_2><image><image>\n" +
    "<fake_token_around_image><row_2_col_1><image><image>" +
    "<fake_token_around_image><row_2_col_2><image><image>\n" +
    "\n<fake_token_around_image><global-img><image><image><fake_token_around_image>";
  assert.equal(imagePromptString(2, 2, 2), want);
  // 1 x 3 with 1 token.
  assert.equal(imagePromptString(1, 3, 1), `${F}<row_1_col_1>${I}${F}<row_1_col_2>${I}${F}<row_1_col_3>${I}\n\n${F}${G}${I}${F}`);
  assert.equal(tilePositionToken(3, 4), "<row_3_col_4>");
  // SmolVLM-256M, a 300x200 image: 3 x 4 tiles + global, 64 tokens each.
  const s = imagePromptString(3, 4, 64);
  assert.equal(s.split(I).length - 1, 13 * 64);
  assert.equal(s.split(F).length - 1, 12 + 2);
  assert.equal(s.split("\n").length - 1, 3 + 1);
  assert.equal(imageTokenCount(3, 4, 64), 832);
});

test("expandImageTokens replaces each marker with its own image's expansion, text around kept", () => {
  const text = "<|im_start|>User:<image>Is it safe?<image><end_of_utterance>\nAssistant:";
  const out = expandImageTokens(text, [0, 1], [0, 2], 1);
  assert.equal(
    out,
    `<|im_start|>User:${F}${G}${I}${F}Is it safe?${F}<row_1_col_1>${I}${F}<row_1_col_2>${I}\n\n${F}${G}${I}${F}<end_of_utterance>\nAssistant:`,
  );
  assert.equal(expandImageTokens("no images here", [], [], 5), "no images here");
  // Custom token strings.
  assert.equal(expandImageTokens("a[IMG]b", [0], [0], 2, { fakeImageToken: "[F]", imageToken: "[IMG]", globalImageToken: "[G]" }), "a[F][G][IMG][IMG][F]b");
});

test("errors: marker count differs from image count, bad grids, bad sequence length", () => {
  assert.throws(() => expandImageTokens("<image><image>", [0], [0], 1), /the text has 2 <image> marker\(s\) but 1 image\(s\) were given/);
  assert.throws(() => expandImageTokens("no marker", [0], [0], 1), /0 <image> marker\(s\) but 1 image/);
  assert.throws(() => expandImageTokens("<image>", [1, 2], [1], 1), /2 row counts but 1 column counts/);
  assert.throws(() => imagePromptString(2, 0, 1), /both 0 or both positive; got 2 x 0/);
  assert.throws(() => imagePromptString(-1, -1, 1), /non-negative integers/);
  assert.throws(() => imagePromptString(0, 0, 0), /imageSeqLen must be a positive integer, got 0/);
});
