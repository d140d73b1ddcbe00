// Config resolution (HF defaults for absent fields, SmolVLM's real shapes),
// RoPE scaling, presets and initModel.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";

import {
  buildModel,
  type Idefics3Config,
  initModel,
  type LlamaConfig,
  loadPretrained,
  presetConfig,
  resolveConfig,
  resolveIdefics3Config,
  resolveLlamaConfig,
  ropeInvFreq,
} from "../../src/models/index.js";
import { HFTokenizer } from "../../src/io/tokenizer.js";
import { noGrad, randn, tensor, tidy } from "../../src/torch/index.js";
import { tempDir, TOKENS } from "./helpers.js";

const dir = tempDir("configs");

/** SmolVLM-256M-Instruct's config.json, model-relevant fields. */
const SMOLVLM_256M = {
  architectures: ["Idefics3ForConditionalGeneration"],
  image_token_id: 49190,
  model_type: "idefics3",
  scale_factor: 4,
  text_config: {
    architectures: ["VLlama3ForCausalLM"],
    head_dim: 64,
    hidden_size: 576,
    intermediate_size: 1536,
    max_position_embeddings: 8192,
    model_type: "llama",
    num_attention_heads: 9,
    num_hidden_layers: 30,
    num_key_value_heads: 3,
    pad_token_id: 2,
    rms_norm_eps: 1e-5,
    rope_theta: 100000,
    vocab_size: 49280,
  },
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  vision_config: { hidden_size: 768, image_size: 512, intermediate_size: 3072, max_image_size: { longest_edge: 512 }, num_attention_heads: 12, patch_size: 16 },
  vocab_size: 49280,
};

describe("config resolution", () => {
  test("SmolVLM-256M: explicit fields kept, absent ones from Idefics3VisionConfig / LlamaConfig", () => {
    const c = resolveConfig(SMOLVLM_256M) as Idefics3Config;
    assert.equal(c.modelType, "idefics3");
    assert.equal(c.imageSeqLen, 64);
    assert.equal(c.vision.numHiddenLayers, 12);
    assert.equal(c.vision.hiddenAct, "gelu_pytorch_tanh");
    assert.equal(c.vision.layerNormEps, 1e-6);
    assert.equal(c.text.numKeyValueHeads, 3);
    assert.equal(c.text.headDim, 64);
    assert.equal(c.text.hiddenAct, "silu");
    assert.equal(c.text.rmsNormEps, 1e-5);
    assert.equal(c.text.ropeTheta, 100000);
    assert.equal(c.text.ropeScaling, null);
    assert.equal(c.tieWordEmbeddings, false);
    assert.equal(c.text.bosTokenId, 1);
    assert.equal(c.text.eosTokenId, 2);
  });

  test("absent sub-configs: Idefics3's default text config (rms 1e-5, pad 128002), vision defaults", () => {
    // (HF's defaults alone, 224 px / 32 px patches = 7 per side, do not divide by scale 2; give the size.)
    const c = resolveIdefics3Config({ model_type: "idefics3", vision_config: { image_size: 448 } });
    assert.equal(c.text.rmsNormEps, 1e-5);
    assert.equal(c.text.padTokenId, 128002);
    assert.equal(c.text.hiddenSize, 4096);
    assert.equal(c.vision.hiddenSize, 1152);
    assert.equal(c.vision.patchSize, 32);
    assert.equal(c.imageTokenId, 128257);
    assert.equal(c.scaleFactor, 2);
    // Llama alone: rms_norm_eps 1e-6, kv heads = heads, head_dim = hidden / heads
    const l = resolveLlamaConfig({ model_type: "llama", hidden_size: 256, num_attention_heads: 8 });
    assert.equal(l.rmsNormEps, 1e-6);
    assert.equal(l.numKeyValueHeads, 8);
    assert.equal(l.headDim, 32);
  });

  test("bad configs name the file and the field", () => {
    assert.throws(() => resolveLlamaConfig({ hidden_size: 100, num_attention_heads: 3 }, "x/config.json"), /x\/config\.json: hidden_size 100 is not a multiple of num_attention_heads 3/);
    assert.throws(() => resolveLlamaConfig({ num_attention_heads: 8, num_key_value_heads: 3, hidden_size: 64 }), /not a multiple of num_key_value_heads 3/);
    assert.throws(() => resolveLlamaConfig({ vocab_size: "big" }), /field "vocab_size" must be an integer/);
    assert.throws(() => resolveLlamaConfig({ rope_scaling: { rope_type: "longrope" } }), /rope_type 'longrope' is not supported/);
    assert.throws(() => resolveLlamaConfig({ rope_scaling: { rope_type: "llama3", factor: 8 } }), /rope_type 'llama3' needs "low_freq_factor"/);
    assert.throws(
      () => resolveIdefics3Config({ vision_config: { image_size: 48, patch_size: 16 }, scale_factor: 2 }),
      /patches per side \(floor\(image_size 48 \/ patch_size 16\) = 3\) is not a multiple of scale_factor 2/,
    );
    assert.throws(() => resolveIdefics3Config({ vision_config: { image_size: 8, patch_size: 14 } }, "y/config.json"), /y\/config\.json: vision_config: image_size 8 is smaller than patch_size 14/);
  });

  test("image_size not a multiple of patch_size: the patch count is floored, as transformers does (SmolVLM-Instruct: 384 / 14, scale 3 -> 81 tokens)", () => {
    const c = resolveIdefics3Config({ vision_config: { image_size: 384, patch_size: 14 }, scale_factor: 3 });
    assert.equal(c.imageSeqLen, 81); // floor(384 / 14) = 27 patches per side, (27 / 3)^2
    assert.equal(c.vision.imageSize, 384);
  });

  test("rope: transformers 5's rope_parameters is read; linear and llama3 scaling", () => {
    const v5 = resolveLlamaConfig({ rope_parameters: { rope_type: "default", rope_theta: 5e5 } });
    assert.equal(v5.ropeTheta, 5e5);
    assert.equal(v5.ropeScaling, null);
    const base = ropeInvFreq({ dim: 8, theta: 10000, scaling: null, maxPositionEmbeddings: 2048 }).invFreq;
    assert.deepEqual([...base], [1, 0.1, 0.01, 0.001].map(Math.fround));
    const lin = ropeInvFreq({ dim: 8, theta: 10000, scaling: { ropeType: "linear", factor: 4 }, maxPositionEmbeddings: 2048 }).invFreq;
    assert.deepEqual([...lin], [...base].map((x) => Math.fround(x / 4)));
    // llama3 with old context 8192, low 1, high 4: wavelength 2 pi / f; < 2048 kept, > 8192 divided by 8, between smoothed
    const l3 = ropeInvFreq({
      dim: 8,
      theta: 10000,
      scaling: { ropeType: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
      maxPositionEmbeddings: 131072,
    }).invFreq;
    assert.equal(l3[0], base[0]); // wavelength 6.3
    assert.equal(l3[1], base[1]); // 63
    assert.equal(l3[2], base[2]); // 628
    const w = (2 * Math.PI) / base[3]; // 6283: medium band
    const s = (8192 / w - 1) / 3;
    assert.ok(Math.abs(l3[3] - ((1 - s) * base[3] / 8 + s * base[3])) < 1e-9);
  });
});

describe("presets", () => {
  test("smolvlm-256m has SmolVLM-256M's shapes and parameter count", () => {
    const c = presetConfig("idefics3", "smolvlm-256m", { ...TOKENS, vocabSize: 49280 }) as Idefics3Config;
    // Parameters by formula: vision (patch conv, positions, 12 layers, post norm), connector, text (embed, 30 layers, norm), lm_head.
    const v = 768, vi = 3072;
    const vision = 3 * 16 * 16 * v + v + 1024 * v + 12 * (4 * (v * v + v) + 2 * 2 * v + v * vi + vi + vi * v + v) + 2 * v;
    const t = 576, ti = 1536, kv = 3 * 64;
    const text = 49280 * t + 30 * (2 * t * t + 2 * t * kv + 3 * t * ti + 2 * t) + t;
    const expected = vision + 768 * 16 * 576 + text + 49280 * t;
    const m = buildModel(c, { dtype: "bfloat16" }); // uninitialized memory, never touched
    try {
      assert.equal(m.numParameters(), expected);
      assert.ok(expected > 255e6 && expected < 260e6, `${expected}`);
    } finally {
      m.dispose();
    }
  });

  test("every preset resolves for both architectures; unknown names are errors", () => {
    for (const p of ["tiny", "small", "smolvlm-256m", "smolvlm-500m"] as const) {
      const v = presetConfig("idefics3", p, TOKENS) as Idefics3Config;
      const l = presetConfig("llama", p, TOKENS) as LlamaConfig;
      assert.equal(v.text.hiddenSize, l.hiddenSize);
      assert.equal(l.tieWordEmbeddings, true);
      assert.equal(v.tieWordEmbeddings, false);
    }
    assert.throws(() => presetConfig("llama", "huge" as never, TOKENS), /unknown model preset 'huge'/);
  });
});

describe("initModel", () => {
  test("tiny idefics3: a complete folder that loads, with the tokenizer's ids in the config", async () => {
    const out = path.join(dir, "tiny-init");
    const res = await initModel({ arch: "idefics3", preset: "tiny", outDir: out, seed: 3 });
    const names = fs.readdirSync(out);
    for (const f of ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"]) {
      assert.ok(names.includes(f), `${f} missing: ${names.join(", ")}`);
    }
    const c = res.config as Idefics3Config;
    const tok = await HFTokenizer.fromDir(out);
    assert.equal(c.text.vocabSize, res.vocabSize);
    assert.equal(c.text.vocabSize, tok.vocabSize);
    assert.equal(c.imageTokenId, tok.tokenToId("<image>"));
    assert.equal(c.text.eosTokenId, tok.eosTokenId);
    const gen = JSON.parse(fs.readFileSync(path.join(out, "generation_config.json"), "utf8"));
    assert.equal(gen.eos_token_id, tok.eosTokenId);
    const { model } = await loadPretrained(out);
    assert.equal(model.numParameters(), res.numParameters);
    // same seed, same weights
    const again = path.join(dir, "tiny-init-2");
    await initModel({ arch: "idefics3", preset: "tiny", outDir: again, seed: 3 });
    assert.ok(fs.readFileSync(path.join(out, "model.safetensors")).equals(fs.readFileSync(path.join(again, "model.safetensors"))));
    // it runs: one image's worth of <image> tokens
    const L = c.imageSeqLen;
    noGrad(() =>
      tidy(() => {
        const ids = tensor([[c.text.bosTokenId!, ...Array(L).fill(c.imageTokenId), 5]], { dtype: "int64" });
        const out2 = model.forward({ inputIds: ids, pixelValues: randn([1, 3, 32, 32]) });
        assert.deepEqual(out2.logits.shape, [1, L + 2, c.text.vocabSize]);
        assert.ok(Boolean(out2.logits.isfinite().all().item()));
      }),
    );
    model.dispose();
  });

  test("tiny llama: no processor files; tied weights stored once", async () => {
    const out = path.join(dir, "tiny-llama-init");
    const res = await initModel({ arch: "llama", preset: "tiny", outDir: out });
    assert.ok(!fs.readdirSync(out).includes("preprocessor_config.json"));
    const { model } = await loadPretrained(out);
    assert.equal(model.numParameters(), res.numParameters);
    model.dispose();
  });
});
