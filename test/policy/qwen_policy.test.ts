// The pipeline above the model interface on the second family: a tiny
// Qwen2.5-VL written by init-model goes through the policy layer (prompt
// encoding with <|image_pad|> expansion, classification, LoRA defaults) and a
// short SFT then GRPO run, with nothing family-specific above src/models.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { type RunConfig, runConfigSchema } from "../../src/config/run_config.js";
import { validate } from "../../src/config/schema.js";
import { loadSplits } from "../../src/data/splits_from_config.js";
import { synthesizeDataset } from "../../src/data/synth/writer.js";
import type { Example } from "../../src/data/types.js";
import { catImageInputs, initModel } from "../../src/models/index.js";
import { loraModules } from "../../src/nn/lora.js";
import { classifyExamples, collatePrompts, disposeEncoded, disposePromptBatch, loadPolicy } from "../../src/policy/index.js";
import { liveTensors, noGrad, tidy } from "../../src/torch/index.js";
import { runGrpo } from "../../src/train/grpo.js";
import { runSft } from "../../src/train/sft.js";

let root = "";
let modelDir = "";
let manifest = "";
let examples: Example[] = [];
const prompt = { systemPrompt: "", userPrompt: "Categories: {categories}?" };

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-qwen-policy-"));
  manifest = (await synthesizeDataset({ outDir: path.join(root, "data"), n: 40, imageSize: 56, seed: 2 })).manifest;
  modelDir = (await initModel({ arch: "qwen2_5_vl", preset: "tiny", outDir: path.join(root, "model"), seed: 3 })).dir;
  const s = await loadSplits({ path: manifest, format: "auto", categories: ["nudity", "weapons"], on_bad_row: "fail", split_seed: 0, val_fraction: 0.1, test_fraction: 0.1 });
  examples = s.train.slice(0, 4);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("qwen2_5_vl: prompts expand <|image_pad|> per image grid; features replace pixels exactly; classification frees what it makes", async () => {
  const policy = await loadPolicy({ modelDir, prompt });
  try {
    assert.equal(policy.family.name, "qwen2_5_vl");
    const enc = await Promise.all(examples.map((e) => policy.encoder.encodePrompt(e)));
    for (const e of enc) {
      const grid = e.images!.imageGridThw!.toFlatArray() as number[];
      assert.equal(e.imageTokens, (grid[0] * grid[1] * grid[2]) / 4, "t*h*w / merge^2 pads");
      assert.equal(e.ids.filter((t) => t === policy.model.imageTokenId).length, e.imageTokens);
    }
    const batch = collatePrompts(enc, policy.padTokenId);
    noGrad(() =>
      tidy(() => {
        const images = catImageInputs(batch.images)!;
        const viaPixels = policy.model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, ...images }).logits;
        const feats = policy.model.encodeImageTokens(images);
        const viaFeatures = policy.model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, imageFeatures: feats, imageGridThw: images.imageGridThw }).logits;
        assert.equal(viaPixels.sub(viaFeatures).abs().max().item(), 0);
        const pos = policy.model.prefillPositions(batch.inputIds, batch.attentionMask, images);
        assert.deepEqual(pos.positionIds.shape, [3, ...batch.inputIds.shape], "M-RoPE positions");
      }),
    );
    disposePromptBatch(batch);
    disposeEncoded(enc);
    await classifyExamples(policy, examples, { batchSize: 2, maxNewTokens: 3 });
    const base = liveTensors();
    const r = await classifyExamples(policy, examples, { batchSize: 2, maxNewTokens: 3 });
    assert.equal(liveTensors(), base);
    assert.equal(r.length, examples.length);
    for (const x of r) assert.ok(x.score >= 0 && x.score <= 1);
  } finally {
    policy.dispose();
  }
});

test("qwen2_5_vl: LoRA adapts the decoder only by default (its vision MLP shares the names gate/up/down_proj)", async () => {
  const p = await loadPolicy({ modelDir, prompt, training: { lora: { rank: 2 } } });
  try {
    const paths = loraModules(p.model).map(([k]) => k);
    assert.ok(paths.length > 0 && paths.every((k) => k.startsWith("model.language_model.")), paths.join(", "));
  } finally {
    p.dispose();
  }
});

test("qwen2_5_vl: SFT then GRPO run end to end and write loadable folders", async () => {
  const cfg = (out: string, model: string): RunConfig =>
    validate(
      runConfigSchema,
      {
        model,
        output_dir: path.join(root, out),
        seed: 1,
        data: { path: manifest },
        prompt: { system_prompt: "", user_prompt: "Categories: {categories}?" },
        lora: { enabled: true, rank: 2, alpha: 4 },
        sft: { max_steps: 2, micro_batch_size: 2, log_every: 1, eval_examples: 2 },
        grpo: { steps: 2, prompts_per_step: 2, num_generations: 2, max_completion_length: 4, log_every: 1 },
      },
      { file: "test" },
    );
  const quiet = { log: () => {}, progress: false };
  const sft = await runSft(cfg("sft", modelDir), quiet);
  assert.equal(sft.steps, 2);
  const grpo = await runGrpo(cfg("grpo", sft.finalModelDir!), quiet);
  assert.equal(grpo.steps, 2);
  const again = await loadPolicy({ modelDir: grpo.finalModelDir!, prompt });
  assert.equal(again.family.name, "qwen2_5_vl");
  again.dispose();
});
