// Presets, random init and the built tokenizer: the full-size presets have
// exactly the parameters (module paths, shapes, total) transformers 5.18 builds
// for the hub's Qwen2-VL-2B / Qwen2.5-VL-3B configs; initQwenModel writes a
// folder that loads, processes an image and generates, reproducibly per seed;
// the tokenizer's special ids, round trip and chat template (same rendering as
// the fixture checkpoint's template).
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";

import { generate } from "../../../src/generate/index.js";
import { HFTokenizer } from "../../../src/io/tokenizer.js";
import {
  buildQwenModel,
  buildQwenTokenizerFiles,
  initQwenModel,
  loadQwenPretrained,
  QWEN_SPECIAL_TOKENS,
  QwenVLForConditionalGeneration,
  QwenVLProcessor,
  qwenPresetConfig,
  type QwenPresetTokens,
  readQwenImageProcessorConfig,
  resolveQwenConfig,
  type RawConfig,
} from "../../../src/models/qwen2_vl/index.js";
import { noGrad } from "../../../src/torch/index.js";
import { applyLora, mergeAndUnload } from "../../../src/nn/lora.js";
import { MODEL_DIRS, QWEN_FIXTURES, reference } from "./fixtures.js";

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-grpo-qwen-init-"));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

const HUB_TOKENS: QwenPresetTokens = { vocabSize: 151665, eosTokenId: 151645, padTokenId: 151643, imageTokenId: 151655, videoTokenId: 151656, visionStartTokenId: 151652, visionEndTokenId: 151653 };

/** Module paths with layer indices collapsed -> shape and count, and the total, as the fixture script summarizes them. */
function summarize(model: QwenVLForConditionalGeneration): { num_parameters: number; parameters: Record<string, { shape: number[]; count: number }> } {
  const parameters: Record<string, { shape: number[]; count: number }> = {};
  let total = 0;
  for (const [name, t] of model.namedParameters()) {
    const key = name.replace(/\.(blocks|layers)\.\d+\./, ".$1.*.");
    const e = (parameters[key] ??= { shape: t.shape, count: 0 });
    assert.deepEqual(e.shape, t.shape, name);
    e.count++;
    total += t.numel;
  }
  return { num_parameters: total, parameters };
}

for (const [preset, family, hubIndex] of [["qwen2-vl-2b", "qwen2_vl", 0], ["qwen2.5-vl-3b", "qwen2_5_vl", 1]] as const) {
  test(`preset ${preset}: the hub model's shapes; every parameter path and shape as transformers builds them`, () => {
    const hub = resolveQwenConfig(JSON.parse(JSON.stringify(reference().config_conversions[hubIndex].input)) as RawConfig);
    const c = qwenPresetConfig(family, preset, HUB_TOKENS);
    const shape = (x: typeof c) => ({ ...x.text, extras: {}, ropeExtras: {}, bosTokenId: null, padTokenId: null });
    assert.deepEqual(shape(c), shape(hub));
    assert.deepEqual({ ...c.vision, extras: {} }, { ...hub.vision, extras: {} });
    assert.equal(c.tieWordEmbeddings, hub.tieWordEmbeddings);
    // Unallocated skeleton (uninitialized memory is never touched).
    const model = buildQwenModel(c, { dtype: "bfloat16" });
    try {
      assert.deepEqual(summarize(model), reference().full_size[family]);
    } finally {
      model.dispose();
    }
  });
}

test("a preset of the other family is refused with the presets that fit", () => {
  assert.throws(() => qwenPresetConfig("qwen2_vl", "qwen2.5-vl-3b", HUB_TOKENS), /preset 'qwen2\.5-vl-3b' is a qwen2_5_vl model, not qwen2_vl; presets for qwen2_vl: tiny, qwen2-vl-2b/);
  assert.throws(() => qwenPresetConfig("qwen2_vl", "huge" as never, HUB_TOKENS), /unknown Qwen preset 'huge'; choose one of: tiny, qwen2-vl-2b, qwen2\.5-vl-3b/);
});

test("the built tokenizer: Qwen's special ids after the BPE vocabulary, round trip, and the checkpoint template's rendering", async () => {
  const dir = path.join(TMP, "tok");
  fs.mkdirSync(dir);
  const built = buildQwenTokenizerFiles();
  for (const [n, text] of Object.entries(built.files)) fs.writeFileSync(path.join(dir, n), text);
  const tok = await HFTokenizer.fromDir(dir);
  const first = built.info.specialTokenIds["<|endoftext|>"];
  QWEN_SPECIAL_TOKENS.forEach((t, i) => assert.equal(tok.tokenToId(t), first + i, t));
  assert.equal(tok.vocabSize, built.info.vocabSize);
  assert.deepEqual([tok.eosToken, tok.padToken, tok.bosToken], ["<|im_end|>", "<|endoftext|>", undefined]);
  const text = "Is this image offensive? Answer: weapons, 12 knives — naïve café\n\nok";
  assert.equal(tok.decode(tok.encode(text)), text);
  const marked = "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>hi";
  assert.deepEqual(tok.encode(marked).slice(0, 4), ["<|vision_start|>", "<|image_pad|>", "<|image_pad|>", "<|vision_end|>"].map((t) => tok.tokenToId(t)));
  // The same prompts as the fixture checkpoint's template (transformers' chat_template.jinja).
  const theirs = await HFTokenizer.fromDir(MODEL_DIRS.qwen2_vl);
  const conversations = [
    ...reference().processor.cases.map((c) => c.messages),
    [{ role: "user" as const, content: "plain text" }],
    [
      { role: "system" as const, content: "Moderate images." },
      { role: "user" as const, content: [{ type: "image" as const }, { type: "text" as const, text: "Label?" }] },
      { role: "assistant" as const, content: [{ type: "text" as const, text: "weapons" }] },
    ],
  ];
  for (const m of conversations) {
    for (const addGenerationPrompt of [true, false]) assert.equal(tok.applyChatTemplate(m, { addGenerationPrompt }), theirs.applyChatTemplate(m, { addGenerationPrompt }));
  }
});

for (const family of ["qwen2_vl", "qwen2_5_vl"] as const) {
  test(`${family}: initQwenModel tiny writes a real-format folder that loads, processes an image and generates; same seed, same bytes`, async () => {
    const a = path.join(TMP, `${family}-a`);
    const r = await initQwenModel({ family, preset: "tiny", outDir: a, seed: 7 });
    assert.ok(r.numParameters > 2e5 && r.numParameters < 5e5, `tiny has ${r.numParameters} parameters`);
    const files = fs.readdirSync(a).sort();
    assert.deepEqual(files, ["chat_template.jinja", "config.json", "generation_config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"]);
    const b = path.join(TMP, `${family}-b`);
    await initQwenModel({ family, preset: "tiny", outDir: b, seed: 7 });
    const sha = (d: string) => crypto.createHash("sha256").update(fs.readFileSync(path.join(d, "model.safetensors"))).digest("hex");
    assert.equal(sha(a), sha(b));
    const c = path.join(TMP, `${family}-c`);
    await initQwenModel({ family, preset: "tiny", outDir: c, seed: 8 });
    assert.notEqual(sha(a), sha(c));

    const { model, config } = await loadQwenPretrained(a);
    try {
      assert.equal(config.modelType, family);
      assert.equal(readQwenImageProcessorConfig(a).maxPixels, 28 * 28 * 16);
      const tok = await HFTokenizer.fromDir(a);
      const proc = QwenVLProcessor.fromDir(a, tok);
      const text = tok.applyChatTemplate([{ role: "user", content: [{ type: "image" }, { type: "text", text: "Is this offensive?" }] }], { addGenerationPrompt: true });
      const batch = await proc.prepare([{ text, images: [path.join(QWEN_FIXTURES, "img_big.png")] }]);
      try {
        assert.deepEqual(batch.grids, [[1, 6, 8]]); // 200x150 under 16 merged tokens: 84x112
        const images = [{ pixelValues: batch.pixelValues, imageGridThw: batch.imageGridThw }];
        const out = noGrad(() => generate(model, { inputIds: batch.inputIds, attentionMask: batch.attentionMask, images }, { doSample: false, maxNewTokens: 4, eosTokenIds: [config.text.eosTokenId as number], padTokenId: tok.padTokenId!, suppressTokenIds: model.suppressTokenIds }));
        assert.equal(out.completions.length, 1);
        const ids = out.completions[0].tokenIds;
        assert.ok(ids.length >= 1 && ids.every((id) => !model.suppressTokenIds.includes(id)));
      } finally {
        for (const t of [batch.inputIds, batch.attentionMask, batch.pixelValues, batch.imageGridThw]) t.dispose();
      }
      // LoRA targets: decoder projections only (Qwen2.5-VL's vision MLP shares the names gate/up/down_proj),
      // the vision tower and the merger (the connector) only when asked for.
      const { paths: targets } = applyLora(model, { targetModules: ["q_proj", "v_proj", "gate_proj"] });
      assert.equal(targets.length, 2 * 3);
      assert.ok(targets.every((p) => p.startsWith("model.language_model.layers.")));
      mergeAndUnload(model);
      const { paths: withVision } = applyLora(model, { targetModules: ["gate_proj"], includeVision: true });
      assert.ok(withVision.some((p) => p.startsWith("model.visual.blocks.")));
      assert.ok(!withVision.some((p) => p.startsWith("model.visual.merger.")), "the merger is the connector");
      mergeAndUnload(model);
      const { paths: withConnector } = applyLora(model, { targetModules: ["gate_proj"], includeConnector: true });
      assert.ok(withConnector.some((p) => p.startsWith("model.visual.merger.")) && !withConnector.some((p) => p.startsWith("model.visual.blocks.")));
    } finally {
      model.dispose();
    }
  });
}

test("vision init 'siglip': vision Linear layers Xavier-uniform, the patch projection LeCun-normal, the decoder N(0, std^2)", async () => {
  const { QwenVLForConditionalGeneration: Model, qwenPresetConfig, initQwenWeights } = await import("../../../src/models/qwen2_vl/index.js");
  const config = qwenPresetConfig("qwen2_5_vl", "tiny", { vocabSize: 300, eosTokenId: 1, padTokenId: 0, imageTokenId: 290, videoTokenId: 291, visionStartTokenId: 292, visionEndTokenId: 293 });
  const model = new Model(config);
  try {
    initQwenWeights(model, { seed: 0, visionInit: "siglip" });
    const p = new Map(model.namedParameters());
    const std = (k: string) => {
      const x = p.get(k)!.toFlatArray() as number[];
      const m = x.reduce((a, b) => a + b, 0) / x.length;
      return Math.sqrt(x.reduce((a, b) => a + (b - m) ** 2, 0) / x.length);
    };
    const qkv = [...p.keys()].find((k) => k.startsWith("model.visual.blocks.0.") && k.endsWith("qkv.weight"))!;
    const [out, inn] = p.get(qkv)!.shape;
    const xavier = Math.sqrt(6 / (out + inn)) / Math.sqrt(3);
    assert.ok(Math.abs(std(qkv) - xavier) < 0.1 * xavier, `${qkv}: std ${std(qkv)} vs Xavier ${xavier}`);
    const patch = p.get("model.visual.patch_embed.proj.weight")!;
    const lecun = 1 / Math.sqrt(patch.numel / patch.shape[0]);
    assert.ok(Math.abs(std("model.visual.patch_embed.proj.weight") - lecun) < 0.1 * lecun);
    const dec = std("model.language_model.layers.0.self_attn.q_proj.weight");
    assert.ok(Math.abs(dec - config.text.initializerRange) < 0.1 * config.text.initializerRange, `decoder std ${dec}`);
  } finally {
    model.dispose();
  }
});
