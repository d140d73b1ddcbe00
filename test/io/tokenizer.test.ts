// HFTokenizer on hand-written Hugging Face tokenizer folders
// (test/fixtures/tokenizer/): encodings worked out by hand from the merges,
// special-token resolution (modern and legacy configs), chat-template
// precedence, and errors that name the bad file.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { findChatTemplates, HFTokenizer } from "../../src/io/tokenizer.js";
import { tempDir } from "./helpers.js";

// dist/test/io -> repository root (fixtures are not copied by tsc).
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const FIXTURES = path.join(ROOT, "test/fixtures/tokenizer");
const GPT2 = path.join(FIXTURES, "gpt2_tiny");
const LLAMA = path.join(FIXTURES, "llama_tiny");

/** A temporary copy of a fixture folder, to modify. */
function copyFixture(src: string): string {
  const dir = tempDir("tok");
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  return dir;
}

describe("byte-level BPE fixture (gpt2_tiny)", () => {
  // vocab: 0 <|endoftext|>, 1 !, 2 e, 3 l, 4 o, 5 r, 6 s, 7 t, 8 w, 9 Ġ, 10 lo, 11 low, 12 er, 13 Ġlow,
  // 14 Ġlower, 15 es, 16 est, 17 Ã, 18 ©; added 19 <sep> (not special).
  // merges by rank: l+o, lo+w, e+r, Ġ+low, Ġlow+er, e+s, es+t.
  test("encodings computed by hand from the merge ranks", async () => {
    const tok = await HFTokenizer.fromDir(GPT2);
    // "low" | " lower" | " lowest" | "!" (GPT-2 pre-tokenizer). " lower": l+o, lo+w, e+r (rank 2 before Ġ+low, rank 3), Ġ+low, Ġlow+er.
    // " lowest": l+o, lo+w, Ġ+low, e+s, es+t -> Ġlow est.
    assert.deepEqual(tok.encode("low lower lowest!"), [11, 14, 13, 16, 1]);
    assert.deepEqual(tok.encode("lowes"), [11, 15]);
    assert.deepEqual(tok.encode(" lowe"), [13, 2]); // no merge Ġlow+e
    assert.deepEqual(tok.encode("é"), [17, 18]); // UTF-8 C3 A9 -> byte characters Ã ©
    assert.deepEqual(tok.encode("low<sep>low"), [11, 19, 11]); // added token kept whole
    // The ByteLevel post-processor adds nothing, with or without special tokens.
    assert.deepEqual(tok.encode("low", { addSpecialTokens: true }), [11]);
  });

  test("decode inverts encode; skipSpecialTokens drops only special ids", async () => {
    const tok = await HFTokenizer.fromDir(GPT2);
    for (const s of ["low lower lowest!", "lowes", " lowe", "é", "low<sep>low"]) assert.equal(tok.decode(tok.encode(s)), s);
    assert.equal(tok.decode([0, 11, 19, 11]), "<|endoftext|>low<sep>low");
    assert.equal(tok.decode([0, 11, 19, 11], { skipSpecialTokens: true }), "low<sep>low");
    assert.equal(tok.decode(Int32Array.from([13, 16])), " lowest");
    assert.equal(tok.decode(BigInt64Array.from([11n])), "low");
    assert.equal(tok.decode([]), "");
    assert.equal(tok.decode([0], { skipSpecialTokens: true }), "");
  });

  test("vocabulary lookups and sizes", async () => {
    const tok = await HFTokenizer.fromDir(GPT2);
    assert.equal(tok.vocabSize, 20);
    assert.equal(tok.tokenToId("Ġlower"), 14);
    assert.equal(tok.tokenToId("<sep>"), 19);
    assert.equal(tok.tokenToId("nope"), undefined);
    assert.equal(tok.idToToken(16), "est");
    assert.equal(tok.idToToken(20), undefined);
  });

  test("special tokens: modern config (added_tokens_decoder) ignores special_tokens_map; pad falls back to eos", async () => {
    const tok = await HFTokenizer.fromDir(GPT2);
    assert.equal(tok.bosToken, "<|endoftext|>");
    assert.equal(tok.eosToken, "<|endoftext|>"); // given as an AddedToken dict with __type
    assert.equal(tok.eosTokenId, 0);
    // special_tokens_map.json says pad "<sep>", but transformers >= 4.34 reads only tokenizer_config.json here.
    assert.equal(tok.padToken, "<|endoftext|>");
    assert.equal(tok.padTokenId, 0);
    assert.deepEqual([...tok.specialTokenIds].sort((a, b) => a - b), [0]);
  });

  test("named chat templates from tokenizer_config.json's list form", async () => {
    const tok = await HFTokenizer.fromDir(GPT2);
    assert.deepEqual(Object.keys(tok.chatTemplates).sort(), ["default", "tool_use"]);
    assert.equal(tok.applyChatTemplate([{ role: "user", content: "hi" }]), "user: hi<|endoftext|>");
    assert.equal(tok.applyChatTemplate([{ role: "user", content: "hi" }], { addGenerationPrompt: true }), "user: hi<|endoftext|>assistant:");
    assert.equal(tok.applyChatTemplate([{ role: "user", content: "a" }, { role: "assistant", content: "b" }], { templateName: "tool_use" }), "TOOLS 2");
    assert.throws(() => tok.applyChatTemplate([], { templateName: "rag" }), /no chat template named "rag".*tokenizer_config\.json.*default, tool_use/);
  });
});

describe("SentencePiece-style BPE fixture (llama_tiny)", () => {
  // vocab: 0 <unk>, 1 <s>, 2 </s>, 3 <0x21>, 4 <0xC3>, 5 <0xA9>, 6 ▁, 7 h, 8 i, 9 ▁h, 10 ▁hi; merges ▁+h, ▁h+i.
  // Normalizer: prepend "▁", spaces -> "▁"; no pre-tokenizer; byte fallback; TemplateProcessing adds <s>.
  test("encodings computed by hand, byte fallback, and BOS only with addSpecialTokens", async () => {
    const tok = await HFTokenizer.fromDir(LLAMA);
    assert.deepEqual(tok.encode("hi hi!"), [10, 10, 3]); // ▁hi ▁hi then "!" -> <0x21>
    assert.deepEqual(tok.encode("hi hi!", { addSpecialTokens: true }), [1, 10, 10, 3]);
    assert.deepEqual(tok.encode("é"), [6, 4, 5]); // ▁ then bytes C3 A9
    // The decoder chain sees "<s>" too: Strip removes a leading space only from the fused text's start.
    assert.equal(tok.decode([1, 10, 10, 3]), "<s> hi hi!");
    assert.equal(tok.decode([1, 10, 10, 3], { skipSpecialTokens: true }), "hi hi!");
    assert.equal(tok.decode([6, 4, 5]), "é");
  });

  test("special tokens: legacy config (no added_tokens_decoder) takes special_tokens_map.json's entries", async () => {
    const tok = await HFTokenizer.fromDir(LLAMA);
    assert.equal(tok.bosToken, "<s>");
    assert.equal(tok.bosTokenId, 1);
    assert.equal(tok.eosTokenId, 2);
    assert.equal(tok.padToken, "<unk>"); // only in special_tokens_map.json
    assert.equal(tok.padTokenId, 0);
    assert.deepEqual([...tok.specialTokenIds].sort((a, b) => a - b), [0, 1, 2]);
    assert.equal(tok.vocabSize, 11);
  });

  test("chat_template.jinja renders with bos/eos", async () => {
    const tok = await HFTokenizer.fromDir(LLAMA);
    assert.equal(tok.chatTemplateOrigin, path.join(LLAMA, "chat_template.jinja"));
    assert.equal(tok.applyChatTemplate([{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }]), "<s>[user] hi</s>[assistant] yo</s>");
  });
});

describe("chat template precedence", () => {
  test("chat_template.jinja over chat_template.json over tokenizer_config.json", async () => {
    const dir = copyFixture(GPT2);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
    cfg.chat_template = "CONFIG {{ messages | length }}";
    fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(cfg));
    fs.writeFileSync(path.join(dir, "chat_template.json"), JSON.stringify({ chat_template: "JSON {{ messages | length }}" }));
    fs.writeFileSync(path.join(dir, "chat_template.jinja"), "JINJA {{ messages | length }}\n");
    fs.mkdirSync(path.join(dir, "additional_chat_templates"));
    fs.writeFileSync(path.join(dir, "additional_chat_templates", "short.jinja"), "SHORT");
    const msgs = [{ role: "user" as const, content: "x" }];

    let tok = await HFTokenizer.fromDir(dir);
    assert.equal(tok.applyChatTemplate(msgs), "JINJA 1"); // the file's final newline is dropped, as Jinja does
    assert.equal(tok.applyChatTemplate(msgs, { templateName: "short" }), "SHORT");
    fs.rmSync(path.join(dir, "chat_template.jinja"));
    tok = await HFTokenizer.fromDir(dir);
    assert.equal(tok.applyChatTemplate(msgs), "JSON 1");
    assert.equal(tok.chatTemplateOrigin, path.join(dir, "chat_template.json"));
    fs.rmSync(path.join(dir, "chat_template.json"));
    tok = await HFTokenizer.fromDir(dir);
    assert.equal(tok.applyChatTemplate(msgs), "CONFIG 1");
    delete cfg.chat_template;
    fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(cfg));
    tok = await HFTokenizer.fromDir(dir);
    assert.deepEqual(tok.chatTemplates, {});
    assert.throws(() => tok.applyChatTemplate(msgs), /no chat template: looked for chat_template\.jinja, chat_template\.json/);
  });

  test("chat_template.json's list form; several templates and no default is an error naming them", async () => {
    const dir = tempDir("tok");
    fs.writeFileSync(
      path.join(dir, "chat_template.json"),
      JSON.stringify({ chat_template: [{ name: "a", template: "A" }, { name: "b", template: "B" }] }),
    );
    const found = findChatTemplates(dir);
    assert.deepEqual(found?.templates, { a: "A", b: "B" });
    fs.copyFileSync(path.join(GPT2, "tokenizer.json"), path.join(dir, "tokenizer.json"));
    const tok = await HFTokenizer.fromDir(dir);
    assert.throws(() => tok.applyChatTemplate([]), /several chat templates and none named "default"; pick one of: a, b/);
    assert.equal(tok.applyChatTemplate([], { templateName: "b" }), "B");
  });
});

describe("errors name the file", () => {
  test("missing folder and missing tokenizer.json", async () => {
    const dir = tempDir("tok");
    await assert.rejects(HFTokenizer.fromDir(path.join(dir, "absent")), /folder not found: .*absent/);
    await assert.rejects(HFTokenizer.fromDir(dir), (e: Error) => e.message.includes(path.join(dir, "tokenizer.json")) && /not found/.test(e.message));
  });

  test("malformed JSON in each file", async () => {
    for (const file of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.json"]) {
      const dir = copyFixture(GPT2);
      fs.writeFileSync(path.join(dir, file), "{ not json");
      await assert.rejects(HFTokenizer.fromDir(dir), (e: Error) => e.message.includes(path.join(dir, file)) && /not valid JSON/.test(e.message), file);
    }
    const dir = copyFixture(GPT2);
    fs.writeFileSync(path.join(dir, "tokenizer_config.json"), "[1, 2]");
    await assert.rejects(HFTokenizer.fromDir(dir), /tokenizer_config\.json must hold a JSON object, found an array/);
  });

  test("tokenizer.json without a model, and a special token missing from the vocabulary", async () => {
    let dir = copyFixture(GPT2);
    fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify({ version: "1.0", added_tokens: [] }));
    await assert.rejects(HFTokenizer.fromDir(dir), /tokenizer\.json has no "model" object/);
    dir = copyFixture(GPT2);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
    cfg.bos_token = "<s>";
    fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(cfg));
    await assert.rejects(HFTokenizer.fromDir(dir), /tokenizer_config\.json: bos_token "<s>" is not in the vocabulary/);
  });

  test("bad chat template values and render errors name the template's file", async () => {
    let dir = copyFixture(GPT2);
    fs.writeFileSync(path.join(dir, "chat_template.json"), JSON.stringify({ template: "x" }));
    await assert.rejects(HFTokenizer.fromDir(dir), /chat_template\.json has no "chat_template" key/);
    fs.writeFileSync(path.join(dir, "chat_template.json"), JSON.stringify({ chat_template: 42 }));
    await assert.rejects(HFTokenizer.fromDir(dir), /chat_template\.json: chat_template must be a string or a list/);

    dir = copyFixture(GPT2);
    const jinja = path.join(dir, "chat_template.jinja");
    fs.writeFileSync(jinja, "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('system messages are not supported') }}{% endif %}{% endfor %}");
    const tok = await HFTokenizer.fromDir(dir);
    assert.equal(tok.applyChatTemplate([{ role: "user", content: "x" }]), "");
    assert.throws(
      () => tok.applyChatTemplate([{ role: "system", content: "x" }]),
      (e: Error) => e.message.includes(jinja) && e.message.includes("system messages are not supported"),
    );
    fs.writeFileSync(jinja, "{% for m in messages %}");
    const broken = await HFTokenizer.fromDir(dir);
    assert.throws(() => broken.applyChatTemplate([]), (e: Error) => e.message.includes(jinja) && /does not parse/.test(e.message));
  });

  test("decode rejects ids outside the vocabulary, naming the id and position", async () => {
    const tok = await HFTokenizer.fromDir(GPT2);
    assert.throws(() => tok.decode([11, 20]), /id 20 at position 1 is not in the vocabulary \(size 20\)/);
    assert.throws(() => tok.decode([-1]), /id -1 at position 0/);
    assert.throws(() => tok.decode([1.5]), /id 1.5 at position 0/);
  });
});
