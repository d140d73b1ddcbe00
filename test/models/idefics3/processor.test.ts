// Idefics3Processor: images from paths, bytes and decoded pixels; prompt
// expansion; tokenization; left/right padding; with a small fake tokenizer
// (exact ids checked) and with the project's real HFTokenizer on a built
// SmolVLM-style tokenizer; errors name the sample or the file; no leaks.
import assert from "node:assert/strict";
import path from "node:path";
import { before, test } from "node:test";
import sharp from "sharp";
import { expandImageTokens } from "../../../src/models/idefics3/prompt.js";
import { Idefics3Processor, type Idefics3Tokenizer } from "../../../src/models/idefics3/processor.js";
import { writeProcessorFiles } from "../../../src/models/idefics3/image_processor_config.js";
import { HFTokenizer } from "../../../src/io/tokenizer.js";
import { writeTokenizerFiles } from "../../../src/io/tokenizer_builder.js";
import { liveTensors } from "../../../src/torch/index.js";
import { tempDir } from "../../io/helpers.js";

const dir = tempDir("idefics3-proc");
const modelDir = path.join(dir, "model");
const widePng = path.join(dir, "wide.png");
const I = "<image>";

/**
 * A fake tokenizer: special tokens (<image>, <fake_token_around_image>,
 * <global-img>, <row_R_col_C>) are one id each, every other character its
 * own id (1000 + code point); BOS id 1 when special tokens are added; pad 0.
 */
class FakeTokenizer implements Idefics3Tokenizer {
  readonly padTokenId: number | undefined;
  private readonly vocab = new Map<string, number>([
    ["<image>", 10],
    ["<fake_token_around_image>", 11],
    ["<global-img>", 12],
  ]);
  /** padTokenId null: no pad token. */
  constructor(padTokenId: number | null = 0, private readonly splitImage = false) {
    this.padTokenId = padTokenId ?? undefined;
    for (let r = 1; r <= 6; r++) for (let c = 1; c <= 6; c++) this.vocab.set(`<row_${r}_col_${c}>`, 100 + r * 10 + c);
  }
  tokenToId(t: string): number | undefined {
    return this.vocab.get(t);
  }
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    const ids: number[] = opts.addSpecialTokens ? [1] : [];
    const re = this.splitImage ? /(<fake_token_around_image>|<global-img>|<row_\d+_col_\d+>)/ : /(<image>|<fake_token_around_image>|<global-img>|<row_\d+_col_\d+>)/;
    for (const part of text.split(re)) {
      if (part === "") continue;
      const id = this.vocab.get(part);
      if (id !== undefined) ids.push(id);
      else for (const ch of part) ids.push(1000 + ch.codePointAt(0)!);
    }
    return ids;
  }
}

before(async () => {
  await writeProcessorFiles(modelDir, { imageSize: 32, imageSeqLen: 4, doImageSplitting: true, longestEdge: 128 });
  await writeTokenizerFiles(modelDir, {});
  await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toFile(widePng);
});

test("a batch: expansion, ids, left padding, masks, tiles in sample order (fake tokenizer)", async () => {
  const live = liveTensors();
  const proc = await Idefics3Processor.fromDir(modelDir, new FakeTokenizer());
  assert.equal(proc.imageSeqLen, 4);
  const small = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 0, g: 0, b: 255 } } }).png().toBuffer();
  const decoded = { data: new Uint8Array(40 * 40 * 3).fill(128), width: 40, height: 40 };
  const batch = [
    { text: `U:${I}A`, images: [widePng] }, // 300x200 -> 3 x 4 tiles + global
    { text: `U:${I}${I}B!`, images: [small, decoded] }, // 20x20 and 40x40 -> 128x128 -> 4 x 4 + global each
    { text: "plain", images: [] },
  ];
  const b = await proc.prepare(batch);
  assert.deepEqual(b.imagesPerSample, [1, 2, 0]);
  assert.deepEqual([b.rows, b.cols, b.tilesPerImage], [[3, 4, 4], [4, 4, 4], [13, 17, 17]]);
  assert.deepEqual(b.numImageTokensPerImage, [13 * 4, 17 * 4, 17 * 4]);
  assert.deepEqual(b.pixelValues.shape, [47, 3, 32, 32]);
  assert.equal(b.texts[0], expandImageTokens(batch[0].text, [3], [4], 4));
  assert.equal(b.texts[2], "plain");

  // Sample 0, by hand: "U" ":" then 3 rows of 4 tiles (fake, row_col, 4 x <image>) each followed by "\n",
  // "\n", fake, global, 4 x <image>, fake, then "A".
  const nl = 1000 + 10;
  const want0: number[] = [1000 + 85, 1000 + 58];
  for (let r = 1; r <= 3; r++) {
    for (let c = 1; c <= 4; c++) want0.push(11, 100 + r * 10 + c, 10, 10, 10, 10);
    want0.push(nl);
  }
  want0.push(nl, 11, 12, 10, 10, 10, 10, 11, 1000 + 65);
  const T = Math.max(...b.lengths);
  assert.equal(b.lengths[0], want0.length);
  assert.deepEqual(b.inputIds.shape, [3, T]);
  assert.equal(b.inputIds.dtype, "int64");
  assert.equal(b.attentionMask.dtype, "int64");
  const ids = b.inputIds.toFlatArray();
  const mask = b.attentionMask.toFlatArray();
  // Left padding: pad ids (0) and mask 0 first, then the tokens.
  const row = (a: number[], i: number) => a.slice(i * T, (i + 1) * T);
  assert.deepEqual(row(ids, 0), [...Array(T - want0.length).fill(0), ...want0]);
  assert.deepEqual(row(mask, 0), [...Array(T - want0.length).fill(0), ...Array(want0.length).fill(1)]);
  assert.equal(b.lengths[1], T, "the longest sample has no padding");
  assert.deepEqual(row(mask, 1), Array(T).fill(1));
  assert.equal(row(ids, 1).filter((x) => x === 10).length, 2 * 17 * 4);
  assert.deepEqual(row(ids, 2).slice(T - 5), [..."plain"].map((c) => 1000 + c.codePointAt(0)!));

  // Tile order: sample 0's 13 red tiles, then sample 1's blue ones, then grey ones.
  const pv = b.pixelValues.toTypedArray() as Float32Array;
  const px = (n: number, c: number) => pv[(n * 3 + c) * 32 * 32 + 100];
  assert.deepEqual([px(0, 0), px(0, 2), px(12, 0)], [1, -1, 1]);
  assert.deepEqual([px(13, 0), px(13, 2), px(29, 2)], [-1, 1, 1]);
  assert.ok(Math.abs(px(30, 1) - (128 / 255 - 0.5) / 0.5) < 1e-6);
  for (const t of [b.inputIds, b.attentionMask, b.pixelValues]) t.dispose();
  assert.equal(liveTensors(), live);
});

test("right padding, added special tokens, the pixel mask, a batch without images", async () => {
  const proc = new Idefics3Processor((await Idefics3Processor.fromDir(modelDir, new FakeTokenizer())).config, new FakeTokenizer(7));
  const b = await proc.prepare([{ text: "ab", images: [] }, { text: "abcd", images: [] }], { padSide: "right", addSpecialTokens: true, returnPixelAttentionMask: true });
  assert.deepEqual(b.inputIds.toFlatArray(), [1, 1097, 1098, 7, 7, 1, 1097, 1098, 1099, 1100]);
  assert.deepEqual(b.attentionMask.toFlatArray(), [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
  assert.deepEqual(b.pixelValues.shape, [0, 3, 32, 32]);
  assert.deepEqual(b.pixelAttentionMask!.shape, [0, 32, 32]);
  for (const t of [b.inputIds, b.attentionMask, b.pixelValues, b.pixelAttentionMask!]) t.dispose();
});

test("with the real HFTokenizer (SmolVLM-style tokens): image tokens are single ids and the text decodes back", async () => {
  const tok = await HFTokenizer.fromDir(modelDir);
  const proc = await Idefics3Processor.fromDir(modelDir, tok);
  const text = `<|im_start|>User:${I}Is this image safe?<end_of_utterance>\nAssistant:`;
  const b = await proc.prepare([{ text, images: [widePng] }, { text: "<|im_start|>User: hi", images: [] }]);
  const T = b.inputIds.shape[1];
  const ids = b.inputIds.toFlatArray().slice(0, T);
  assert.equal(b.lengths[0], T);
  assert.equal(ids.filter((x) => x === tok.tokenToId(I)).length, 13 * 4);
  assert.equal(ids.filter((x) => x === tok.tokenToId("<row_3_col_4>")).length, 1);
  assert.equal(ids.filter((x) => x === tok.tokenToId("<global-img>")).length, 1);
  assert.equal(tok.decode(ids), b.texts[0]);
  // The shorter sample is left-padded with the tokenizer's pad id.
  const second = b.inputIds.toFlatArray().slice(T);
  assert.equal(second[0], tok.padTokenId);
  assert.equal(tok.decode(second.slice(T - b.lengths[1])), "<|im_start|>User: hi");
  for (const t of [b.inputIds, b.attentionMask, b.pixelValues]) t.dispose();
});

test("errors name the sample or the file, and leave no tensors behind", async () => {
  const live = liveTensors();
  const proc = await Idefics3Processor.fromDir(modelDir, new FakeTokenizer());
  await assert.rejects(proc.prepare([{ text: "x", images: [] }, { text: `${I}${I}`, images: [widePng] }]), /sample 1 has 2 <image> marker\(s\) in its text but 1 image\(s\)/);
  await assert.rejects(proc.prepare([{ text: I, images: [path.join(dir, "nope.jpg")] }]), /nope\.jpg: image file not found/);
  await assert.rejects(proc.prepare([{ text: I, images: [new Uint8Array([1, 2, 3])] }]), /sample 0 image 0: not a readable image/);
  await assert.rejects(proc.prepare([]), /empty batch/);
  await assert.rejects(proc.prepare([{ text: "a", images: [] }], { padSide: "middle" as "left" }), /padSide must be "left" or "right"/);
  // A tokenizer that knows <image> but splits it when encoding.
  const splitting = new Idefics3Processor(proc.config, new FakeTokenizer(0, true));
  await assert.rejects(splitting.prepare([{ text: I, images: [widePng] }]), /sample 0 tokenized to 0 <image> ids \(id 10\), expected 52/);
  // No pad token and samples of different lengths.
  const nopad = new Idefics3Processor(proc.config, new FakeTokenizer(null));
  await assert.rejects(nopad.prepare([{ text: "a", images: [] }, { text: "abc", images: [] }]), /differ in length and the tokenizer has no pad token/);
  assert.equal(liveTensors(), live);
  // A tokenizer without the image tokens at all.
  const bare: Idefics3Tokenizer = { padTokenId: 0, tokenToId: () => undefined, encode: () => [] };
  assert.throws(() => new Idefics3Processor(proc.config, bare), /the tokenizer has no token <image> \/ <fake_token_around_image>/);
});
