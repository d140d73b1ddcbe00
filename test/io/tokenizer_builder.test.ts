// The tiny tokenizer of test/demo models: it loads with HFTokenizer, round
// trips any UTF-8 text, keeps special tokens whole, pads to an exact
// vocabulary size, is byte-for-byte deterministic, and its tokenizer.json
// keeps the invariants Python's `tokenizers` checks when it loads a BPE model.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { before, describe, test } from "node:test";

import { HFTokenizer } from "../../src/io/tokenizer.js";
import {
  buildTokenizerFiles,
  byteToUnicodeTable,
  DEFAULT_NUM_MERGES,
  toByteLevel,
  trainByteLevelBpe,
  writeTokenizerFiles,
  type BuiltTokenizerInfo,
} from "../../src/io/tokenizer_builder.js";
import { TOKENIZER_CORPUS } from "../../src/io/tokenizer_corpus.js";
import { tempDir } from "./helpers.js";

// Made at load time: a tempDir's clean-up hook must be registered outside other hooks.
const dir = tempDir("tokb");
let info: BuiltTokenizerInfo;
let tok: HFTokenizer;

before(async () => {
  info = await writeTokenizerFiles(dir, {});
  tok = await HFTokenizer.fromDir(dir);
});

describe("built tokenizer, default options", () => {
  test("writes the four files and loads with the SmolVLM special tokens", () => {
    assert.deepEqual(fs.readdirSync(dir).sort(), ["chat_template.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]);
    assert.equal(tok.bosToken, "<|im_start|>");
    assert.equal(tok.eosToken, "<end_of_utterance>");
    assert.equal(tok.padToken, "<|im_end|>");
    assert.equal(tok.unkToken, "<|endoftext|>");
    assert.equal(tok.bosTokenId, info.bosTokenId);
    assert.equal(tok.eosTokenId, info.eosTokenId);
    assert.equal(tok.padTokenId, info.padTokenId);
    assert.deepEqual([info.specialTokenIds["<|endoftext|>"], info.bosTokenId, info.padTokenId], [0, 1, 2]);
    assert.equal(info.numMerges, DEFAULT_NUM_MERGES);
    // 3 leading specials + 256 bytes + merges + (fake, image, 16 tiles, global, end_of_utterance).
    assert.equal(info.vocabSize, 3 + 256 + DEFAULT_NUM_MERGES + 20);
    assert.equal(tok.vocabSize, info.vocabSize);
    assert.equal(info.eosTokenId, info.vocabSize - 1);
    for (const [t, id] of Object.entries(info.specialTokenIds)) {
      assert.equal(tok.tokenToId(t), id, t);
      assert.ok(tok.specialTokenIds.has(id), t);
    }
    assert.equal(tok.specialTokenIds.size, Object.keys(info.specialTokenIds).length);
  });

  test("arbitrary UTF-8 text round trips through encode/decode", () => {
    const texts = [
      "Héllo wörld, naïve café, Ærøskøbing, señor, Straße",
      "emoji 🎉👍🏽 and a family 👨‍👩‍👧 and flags 🇫🇷",
      "日本語のテキスト, 中文, 한국어, العربية, עברית, हिन्दी",
      "  leading spaces, tabs\tand\nnewlines\r\n  trailing  ",
      "control \u0000\u0001\u007f chars and a lone combining mark e\u0301",
      "<answer>weapons</answer> </think> <|im_start|> half <image tag",
      "",
    ];
    for (const s of texts) {
      const ids = tok.encode(s);
      assert.equal(tok.decode(ids), s, JSON.stringify(s));
      for (const id of ids) assert.ok(id >= 0 && id < tok.vocabSize);
    }
  });

  test("special tokens are single ids, never split, also between text", () => {
    const img = info.specialTokenIds["<image>"];
    assert.deepEqual(tok.encode("<image><image>"), [img, img]);
    const ids = tok.encode("Look<image>here<end_of_utterance>");
    assert.equal(ids.filter((i) => i === img).length, 1);
    assert.equal(ids.at(-1), info.eosTokenId);
    assert.equal(tok.decode(ids), "Look<image>here<end_of_utterance>");
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), "Lookhere");
    for (const t of ["<fake_token_around_image>", "<global-img>", "<row_1_col_1>", "<row_4_col_4>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]) {
      assert.deepEqual(tok.encode(t), [info.specialTokenIds[t]], t);
    }
    assert.equal(tok.tokenToId("<row_5_col_1>"), undefined);
  });

  test("domain text is short: category names are one token, a tagged answer at most 7", () => {
    for (const c of ["nudity", "weapons", "safe"]) {
      assert.equal(tok.encode(c).length, 1, c);
      assert.equal(tok.encode(" " + c).length, 1, " " + c);
    }
    // "<" "answer" ">" "weapons" "</" "answer" ">": the GPT-2 pre-tokenizer splits at each letter/symbol boundary.
    assert.equal(tok.encode("<answer>weapons</answer>").length, 7);
    assert.ok(tok.encode("<think>").length <= 3);
  });

  test("the chat template renders SmolVLM's format and tokenizes with whole special tokens", () => {
    const prompt = tok.applyChatTemplate([{ role: "user", content: [{ type: "image" }, { type: "text", text: "Is this safe?" }] }], { addGenerationPrompt: true });
    assert.equal(prompt, "<|im_start|>User:<image>Is this safe?<end_of_utterance>\nAssistant:");
    const ids = tok.encode(prompt);
    assert.equal(ids[0], info.bosTokenId);
    assert.equal(ids.filter((i) => i === info.eosTokenId).length, 1);
    assert.equal(tok.decode(ids), prompt);
  });
});

describe("tokenizer.json invariants Python's tokenizers checks on load", () => {
  test("contiguous ids, merges of vocabulary tokens into vocabulary tokens, added tokens matching the config", () => {
    const text = fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8");
    const tj = JSON.parse(text);
    assert.equal(tj.model.type, "BPE");
    assert.deepEqual(tj.pre_tokenizer, { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true });
    assert.equal(tj.decoder.type, "ByteLevel");
    const vocab = tj.model.vocab as Record<string, number>;
    const ids = Object.values(vocab).sort((a, b) => a - b);
    assert.deepEqual(ids, ids.map((_, i) => i), "model vocab ids are 0..n-1");
    // The file lists them in id order, as HF writes it (JSON.parse reorders integer-like keys, so read the text).
    const block = text.slice(text.indexOf('"vocab": {'), text.indexOf('"merges": ['));
    const fileOrder = [...block.matchAll(/^\s+".*": (\d+),?$/gm)].map((m) => Number(m[1]));
    assert.deepEqual(fileOrder, ids);
    for (const ch of byteToUnicodeTable()) assert.ok(ch in vocab, `byte character ${ch} in vocab`);
    assert.equal(tj.model.merges.length, info.numMerges);
    for (const m of tj.model.merges as string[]) {
      const parts = m.split(" ");
      assert.equal(parts.length, 2, m);
      assert.ok(parts[0] in vocab && parts[1] in vocab && parts[0] + parts[1] in vocab, m);
    }
    const added = tj.added_tokens as Array<{ id: number; content: string; special: boolean }>;
    // Python assigns ids to added tokens absent from the model vocab sequentially after it, in listed
    // order, and warns when the file says otherwise: so those ids must be n, n+1, ... in order.
    const n = Object.keys(vocab).length;
    assert.deepEqual(added.slice(0, 3).map((t) => [t.content, t.id]), [["<|endoftext|>", 0], ["<|im_start|>", 1], ["<|im_end|>", 2]]);
    assert.deepEqual(added.slice(3).map((t) => t.id), Array.from({ length: info.vocabSize - n }, (_, i) => n + i));
    assert.ok(added.every((t) => t.special));
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
    assert.deepEqual(
      Object.entries(cfg.added_tokens_decoder).map(([id, t]) => [Number(id), (t as { content: string }).content]),
      added.map((t) => [t.id, t.content]),
    );
    assert.deepEqual(Object.keys(cfg), [...Object.keys(cfg)].sort(), "keys sorted as transformers saves them");
    assert.equal(cfg.model_max_length, 8192);
    const ct = JSON.parse(fs.readFileSync(path.join(dir, "chat_template.json"), "utf8"));
    assert.equal(ct.chat_template, cfg.chat_template);
  });
});

describe("options", () => {
  test("vocabSize pads with reserved special tokens to exactly that size", async () => {
    const d = tempDir("tokb");
    const padded = await writeTokenizerFiles(d, { vocabSize: info.vocabSize + 37 });
    assert.equal(padded.vocabSize, info.vocabSize + 37);
    const t = await HFTokenizer.fromDir(d);
    assert.equal(t.vocabSize, info.vocabSize + 37);
    assert.equal(t.idToToken(info.vocabSize), "<|reserved_special_token_0|>");
    assert.equal(t.idToToken(info.vocabSize + 36), "<|reserved_special_token_36|>");
    assert.equal(t.idToToken(info.vocabSize + 37), undefined);
    assert.ok(t.specialTokenIds.has(info.vocabSize + 36));
    // Padding appends: every other id is unchanged.
    assert.deepEqual(padded.specialTokenIds, info.specialTokenIds);
    const ids = tok.encode("The image shows a rifle.");
    assert.deepEqual(t.encode("The image shows a rifle."), ids);
    // Reserved tokens decode as their text between byte-decoded runs, and are dropped as special.
    const mixed = [...ids, info.vocabSize + 5, ...ids];
    assert.equal(t.decode(mixed), "The image shows a rifle.<|reserved_special_token_5|>The image shows a rifle.");
    assert.equal(t.decode(mixed, { skipSpecialTokens: true }), "The image shows a rifle.The image shows a rifle.");
    assert.equal(buildTokenizerFiles({ vocabSize: info.vocabSize }).info.vocabSize, info.vocabSize);
  });

  test("SmolVLM's vocabulary size (49280, ~48k reserved tokens) loads, and decoding stays fast", async () => {
    const d = tempDir("tokb");
    await writeTokenizerFiles(d, { vocabSize: 49280 });
    const t = await HFTokenizer.fromDir(d);
    assert.equal(t.vocabSize, 49280);
    const text = "The image shows a rifle on a table. ".repeat(100);
    const ids = t.encode(text);
    assert.deepEqual(ids, tok.encode(text));
    const t0 = performance.now();
    assert.equal(t.decode(ids), text);
    const ms = performance.now() - t0;
    // The package's own ByteLevel decoder scans all added tokens per token: ~500 ms here. HFTokenizer's Set lookup: ~10 ms.
    assert.ok(ms < 250, `decode of ${ids.length} tokens took ${ms.toFixed(0)} ms`);
  });

  test("a vocabSize below what the tokenizer needs is an error that says how many", () => {
    assert.throws(() => buildTokenizerFiles({ vocabSize: 500 }), new RegExp(`vocabSize 500 is smaller than the ${info.vocabSize} ids`));
    assert.throws(() => buildTokenizerFiles({ maxImageRows: 0 }), /maxImageRows must be an integer >= 1, got 0/);
  });

  test("numMerges and the tile grid size change the vocabulary as documented", async () => {
    const small = buildTokenizerFiles({ numMerges: 0, maxImageRows: 2, maxImageCols: 3 });
    assert.equal(small.info.numMerges, 0);
    assert.equal(small.info.vocabSize, 3 + 256 + 2 + 6 + 2);
    assert.ok("<row_2_col_3>" in small.info.specialTokenIds);
    assert.ok(!("<row_3_col_1>" in small.info.specialTokenIds));
    const d = tempDir("tokb");
    await writeTokenizerFiles(d, { numMerges: 0, maxImageRows: 2, maxImageCols: 3 });
    const t = await HFTokenizer.fromDir(d);
    const s = "bytes only: é🎉";
    assert.equal(t.encode(s).length, new TextEncoder().encode(s).length);
    assert.equal(t.decode(t.encode(s)), s);
  });

  test("same options give identical bytes", async () => {
    const a = tempDir("tokb");
    const b = tempDir("tokb");
    await writeTokenizerFiles(a, { vocabSize: 1500 });
    await writeTokenizerFiles(b, { vocabSize: 1500 });
    for (const f of fs.readdirSync(a)) assert.ok(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), f);
    // The builder caches merges per corpus; a fresh training run gives the same ones.
    const tj = JSON.parse(fs.readFileSync(path.join(a, "tokenizer.json"), "utf8"));
    const fresh = trainByteLevelBpe(TOKENIZER_CORPUS, { numMerges: DEFAULT_NUM_MERGES }).map(([l, r]) => `${l} ${r}`);
    assert.deepEqual(tj.model.merges, fresh);
  });
});

describe("BPE trainer", () => {
  test("merges the most frequent pair first, ties broken by text, stops below minFrequency", () => {
    // Pre-tokens: "aaab" x1, "Ġaaab" x2 (byte-level, so " " is "Ġ"): pairs a+a 6, a+b 3, Ġ+a 2.
    const merges = trainByteLevelBpe("aaab aaab aaab", { numMerges: 10 });
    assert.deepEqual(merges[0], ["a", "a"]);
    // After a+a (leftmost first): "aa a b" -> pairs aa+a 3, a+b 3, Ġ+aa 2; tie at 3 -> "a b" < "aa a" in code-unit order.
    assert.deepEqual(merges[1], ["a", "b"]);
    assert.deepEqual(merges[2], ["aa", "ab"]);
    assert.deepEqual(merges[3], ["Ġ", "aaab"]);
    assert.equal(merges.length, 4); // only one distinct word shape left per pre-token
    assert.deepEqual(trainByteLevelBpe("ab cd", { numMerges: 10 }), []); // every pair occurs once
    assert.equal(toByteLevel(" é\n"), "ĠÃ©Ċ");
  });
});
