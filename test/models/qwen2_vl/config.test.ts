// Qwen2-VL / Qwen2.5-VL configs: both layouts resolve, and config.json is
// written exactly as transformers 5.18 writes it (the hub's flat Qwen2-VL-2B
// and Qwen2.5-VL-3B configs after a load + save in transformers, and the tiny
// checkpoints' own config.json files); defaults and errors.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { qwenConfigToJson, qwenGenerationConfigJson, resolveQwenConfig, type RawConfig } from "../../../src/models/qwen2_vl/index.js";
import { FAMILIES, MODEL_DIRS, reference } from "./fixtures.js";

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

test("hub-style flat configs resolve and are written as transformers 5.18 saves them after loading", () => {
  const conv = reference().config_conversions;
  assert.equal(conv.length, 2);
  for (const { input, saved } of conv) {
    const c = resolveQwenConfig(clone(input) as RawConfig, `${input.model_type} flat`);
    assert.equal(c.layout, "flat");
    assert.deepEqual(qwenConfigToJson(c), saved);
  }
  const q25 = resolveQwenConfig(clone(conv[1].input) as RawConfig);
  assert.equal(q25.modelType, "qwen2_5_vl");
  assert.deepEqual([q25.text.hiddenSize, q25.text.numHiddenLayers, q25.text.headDim, q25.text.ropeTheta], [2048, 36, 128, 1e6]);
  assert.deepEqual(q25.text.mropeSection, [16, 24, 24]);
  assert.deepEqual([q25.vision.width, q25.vision.outHiddenSize, q25.vision.windowSize, q25.vision.intermediateSize], [1280, 2048, 112, 3420]);
  assert.equal(q25.tieWordEmbeddings, true);
  const q2 = resolveQwenConfig(clone(conv[0].input) as RawConfig);
  assert.deepEqual([q2.vision.width, q2.vision.outHiddenSize, q2.vision.intermediateSize, q2.vision.hiddenAct], [1280, 1536, 5120, "quick_gelu"]);
});

for (const family of FAMILIES) {
  test(`${family}: the checkpoint's config.json (nested, written by transformers 5.18) round-trips exactly`, () => {
    const raw = JSON.parse(fs.readFileSync(path.join(MODEL_DIRS[family], "config.json"), "utf8")) as RawConfig;
    const c = resolveQwenConfig(clone(raw));
    assert.equal(c.layout, "nested");
    assert.equal(c.modelType, family);
    assert.deepEqual(qwenConfigToJson(c), raw);
    // A second pass changes nothing.
    assert.deepEqual(qwenConfigToJson(resolveQwenConfig(qwenConfigToJson(c))), raw);
  });
}

test("defaults are transformers 5.18's", () => {
  const a = resolveQwenConfig({ model_type: "qwen2_vl", vision_config: { hidden_size: 8192 } });
  assert.deepEqual(
    [a.text.vocabSize, a.text.hiddenSize, a.text.numHiddenLayers, a.text.numAttentionHeads, a.text.numKeyValueHeads, a.text.rmsNormEps, a.text.ropeTheta],
    [152064, 8192, 80, 64, 8, 1e-5, 1e6],
  );
  assert.deepEqual([a.text.bosTokenId, a.text.eosTokenId, a.text.padTokenId, a.tieWordEmbeddings], [151643, 151645, null, false]);
  assert.deepEqual([a.imageTokenId, a.videoTokenId, a.visionStartTokenId, a.visionEndTokenId], [151655, 151656, 151652, 151653]);
  assert.deepEqual([a.vision.depth, a.vision.width, a.vision.numHeads, a.vision.patchSize, a.vision.temporalPatchSize, a.vision.ropeTheta], [32, 1280, 16, 14, 2, 10000]);
  const b = resolveQwenConfig({ architectures: ["Qwen2_5_VLForConditionalGeneration"], vision_config: { out_hidden_size: 8192 } });
  assert.equal(b.modelType, "qwen2_5_vl");
  assert.deepEqual(b.vision.fullattBlockIndexes, [7, 15, 23, 31]);
  assert.deepEqual([b.vision.width, b.vision.intermediateSize, b.vision.windowSize, b.vision.tokensPerSecond, b.vision.hiddenAct], [3584, 3420, 112, 4, "silu"]);
  // A pre-v5 text_config's tie flag ties the model (transformers' backward compatibility).
  const t = resolveQwenConfig({ model_type: "qwen2_vl", text_config: { hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: true, rope_parameters: { mrope_section: [2, 3, 3] } }, vision_config: { hidden_size: 64 } });
  assert.equal(t.tieWordEmbeddings, true);
  // rope_scaling wins over rope_parameters, as in transformers.
  const r = resolveQwenConfig({ model_type: "qwen2_vl", hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 4, rope_scaling: { type: "mrope", mrope_section: [4, 2, 2] }, rope_parameters: { mrope_section: [2, 3, 3] }, vision_config: { hidden_size: 64 } });
  assert.deepEqual(r.text.mropeSection, [4, 2, 2]);
});

test("generation_config.json derived as transformers does", () => {
  const c = resolveQwenConfig(clone(reference().config_conversions[1].input) as RawConfig);
  assert.deepEqual(qwenGenerationConfigJson(c), {
    _from_model_config: true,
    bos_token_id: 151643,
    eos_token_id: 151645,
    output_attentions: false,
    output_hidden_states: false,
    transformers_version: "5.18.0",
    use_cache: true,
  });
});

test("bad configs are named with the file, the field and what is expected", () => {
  const base = (): RawConfig => ({ model_type: "qwen2_vl", text_config: { hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, rope_parameters: { mrope_section: [4, 2, 2] } }, vision_config: { hidden_size: 64, embed_dim: 32, num_heads: 2 } });
  const withText = (extra: RawConfig) => ({ ...base(), text_config: { ...(base().text_config as RawConfig), ...extra } });
  assert.throws(() => resolveQwenConfig({ model_type: "llama" }, "c.json"), /c\.json: not a Qwen2-VL \/ Qwen2\.5-VL config/);
  assert.throws(() => resolveQwenConfig(withText({ use_sliding_window: true }), "c.json"), /c\.json: text_config: use_sliding_window true is not supported/);
  assert.throws(() => resolveQwenConfig(withText({ rope_parameters: { mrope_section: [4, 4, 4] } }), "c.json"), /mrope_section \[4, 4, 4\] must sum to head_dim \/ 2 = 8/);
  assert.throws(() => resolveQwenConfig(withText({ rope_parameters: { rope_type: "yarn", factor: 2, mrope_section: [4, 2, 2] } }), "c.json"), /rope_type "yarn" is not supported/);
  assert.throws(() => resolveQwenConfig(withText({ num_key_value_heads: 3 }), "c.json"), /num_attention_heads 4 is not a multiple of num_key_value_heads 3/);
  assert.throws(() => resolveQwenConfig({ ...base(), vision_config: { hidden_size: 48, embed_dim: 32, num_heads: 2 } }, "c.json"), /vision_config\.hidden_size 48 must equal the text hidden_size 64/);
  assert.throws(() => resolveQwenConfig({ ...base(), vision_config: { hidden_size: 64, embed_dim: 24, num_heads: 4 } }, "c.json"), /head dim embed_dim \/ num_heads = 6 must be a multiple of 4/);
  assert.throws(() => resolveQwenConfig({ ...base(), model_type: "qwen2_5_vl", vision_config: { out_hidden_size: 64, hidden_size: 32, num_heads: 2, depth: 2, fullatt_block_indexes: [1, 5] } }, "c.json"), /fullatt_block_indexes \[5\] out of range for depth 2/);
  assert.throws(() => resolveQwenConfig({ ...base(), model_type: "qwen2_5_vl", vision_config: { out_hidden_size: 64, hidden_size: 32, num_heads: 2, window_size: 100 } }, "c.json"), /window_size 100 must be a multiple of spatial_merge_size \* patch_size = 28/);
  assert.throws(() => resolveQwenConfig(withText({ vocab_size: "big" }), "c.json"), /c\.json: text_config: field "vocab_size" must be an integer >= 1, got "big"/);
});
