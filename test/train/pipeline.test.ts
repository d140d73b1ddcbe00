// SFT and GRPO on a tiny model and a tiny synthetic set: smoke runs (every
// trainable parameter changes), exact resume (interrupted + resumed gives the
// losses of an uninterrupted run), and an end-to-end mini demo.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { validate } from "../../src/config/schema.js";
import { synthesizeDataset } from "../../src/data/synth/writer.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { initModel } from "../../src/models/init_model.js";
import { SafetensorsFolder } from "../../src/io/safetensors.js";
import { dispose } from "../../src/torch/index.js";
import { type RunConfig, runConfigSchema } from "../../src/config/run_config.js";
import { runGrpo } from "../../src/train/grpo.js";
import { runSft } from "../../src/train/sft.js";

const FIXTURES = fileURLToPath(new URL("../../../test/fixtures", import.meta.url));
let root = "";
let dataPath = "";
let modelDir = "";
const quiet = { log: () => {}, progress: false };

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-pipeline-"));
  const ds = await synthesizeDataset({ outDir: path.join(root, "data"), n: 48, imageSize: 32, seed: 1 });
  dataPath = ds.manifest;
  modelDir = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "model"), seed: 2 })).dir;
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

function config(out: string, patch: Record<string, unknown> = {}): RunConfig {
  const raw: Record<string, unknown> = {
    model: modelDir,
    output_dir: path.join(root, out),
    seed: 3,
    data: { path: dataPath },
    prompt: { system_prompt: "", user_prompt: "Categories: {categories}?" },
    lora: { enabled: true, rank: 4, alpha: 8, dropout: 0.1 },
    sft: { max_steps: 4, micro_batch_size: 4, grad_accum: 2, lr: 1e-3, log_every: 1, eval_examples: 4 },
    grpo: { steps: 3, prompts_per_step: 2, num_generations: 4, max_completion_length: 6, lr: 1e-3, log_every: 1, rewards: [{ module: path.join(FIXTURES, "rewards", "length_reward.mjs") }] },
    eval: { batch_size: 4, max_new_tokens: 6, report: false },
  };
  for (const [k, v] of Object.entries(patch)) raw[k] = typeof v === "object" && v && !Array.isArray(v) ? { ...(raw[k] as object), ...v } : v;
  return validate(runConfigSchema, raw, { file: "test config" });
}

const close = (a: number[], b: number[], tol: number, what: string) => {
  assert.equal(a.length, b.length, `${what}: lengths`);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= tol * Math.max(1, Math.abs(b[i])), `${what}[${i}]: ${v} vs ${b[i]}`));
};

describe("SFT", () => {
  test("full fine-tuning changes every parameter (vision unfrozen)", async () => {
    const r = await runSft(config("sft-full", { lora: { enabled: false }, sft: { max_steps: 2, freeze_vision: false } }), quiet);
    const base = SafetensorsFolder.open(modelDir);
    const trained = SafetensorsFolder.open(r.finalModelDir!);
    const unchanged: string[] = [];
    for (const name of base.names) {
      const a = base.get(name);
      const b = trained.get(name);
      if (Buffer.compare(Buffer.from(a.toBytes()), Buffer.from(b.toBytes())) === 0) unchanged.push(name);
      dispose([a, b]);
    }
    assert.deepEqual(unchanged, []);
    assert.ok(r.losses.every(Number.isFinite) && r.valLoss !== null);
  });

  test("interrupted and resumed SFT gives the losses of an uninterrupted run", async () => {
    const full = await runSft(config("sft-a"), quiet);
    const first = await runSft(config("sft-b"), { ...quiet, stopAfterSteps: 2 });
    assert.equal(first.stoppedEarly, true);
    assert.equal(first.finalModelDir, null);
    const rest = await runSft(config("sft-b"), { ...quiet, resume: "auto" });
    close([...first.losses, ...rest.losses], full.losses, 1e-6, "loss");
    // The final adapters agree too.
    const a = loadSafetensors(path.join(full.finalModelDir! + "-adapter", "adapter_model.safetensors"));
    const b = loadSafetensors(path.join(rest.finalModelDir! + "-adapter", "adapter_model.safetensors"));
    for (const [k, t] of a) close(t.toFlatArray().slice(0, 64), b.get(k)!.toFlatArray().slice(0, 64), 1e-6, k);
    dispose([...a.values(), ...b.values()]);
  });

  test("hflip augmentation: resumed = uninterrupted, and the flips change the training", async () => {
    const aug = { sft: { augment: "hflip" } };
    const full = await runSft(config("sft-aug-a", aug), quiet);
    const first = await runSft(config("sft-aug-b", aug), { ...quiet, stopAfterSteps: 2 });
    const rest = await runSft(config("sft-aug-b", aug), { ...quiet, resume: "auto" });
    close([...first.losses, ...rest.losses], full.losses, 1e-6, "loss");
    const plain = await runSft(config("sft-aug-none"), quiet);
    assert.ok(full.losses.some((v, i) => Math.abs(v - plain.losses[i]) > 1e-6), `hflip gave the losses of no augmentation: ${full.losses} vs ${plain.losses}`);
  });
});

describe("GRPO", () => {
  test("full fine-tuning: the vision tower stays frozen by default and trains with grpo.freeze_vision false", async () => {
    const changedVision = (dir: string) => {
      const base = SafetensorsFolder.open(modelDir);
      const trained = SafetensorsFolder.open(dir);
      const names = base.names.filter((n) => n.includes("vision_model"));
      assert.ok(names.length > 0);
      const changed = names.filter((name) => {
        const a = base.get(name);
        const b = trained.get(name);
        const differs = Buffer.compare(Buffer.from(a.toBytes()), Buffer.from(b.toBytes())) !== 0;
        dispose([a, b]);
        return differs;
      });
      return { changed, total: names.length };
    };
    const frozen = await runGrpo(config("grpo-vision-frozen", { lora: { enabled: false }, grpo: { steps: 2 } }), quiet);
    assert.deepEqual(changedVision(frozen.finalModelDir!).changed, []);
    const open = await runGrpo(config("grpo-vision-open", { lora: { enabled: false }, grpo: { steps: 2, freeze_vision: false } }), quiet);
    const v = changedVision(open.finalModelDir!);
    assert.ok(v.changed.length === v.total, `only ${v.changed.length} of ${v.total} vision tensors changed: the policy gradient did not reach the vision tower`);
  });

  test("a LoRA run changes every adapter tensor", async () => {
    const r = await runGrpo(config("grpo-smoke", { grpo: { steps: 2 } }), quiet);
    const ad = loadSafetensors(path.join(r.finalModelDir! + "-adapter", "adapter_model.safetensors"));
    const zeroB = [...ad].filter(([k, t]) => k.includes("lora_B") && (t.abs().sum().item() as number) === 0).map(([k]) => k);
    assert.deepEqual(zeroB, [], "every lora_B moved away from its zero init");
    dispose([...ad.values()]);
    assert.ok(r.history.every((h) => Number.isFinite(h.loss)));
  });

  test("interrupted and resumed GRPO gives the losses and rewards of an uninterrupted run", async () => {
    const full = await runGrpo(config("grpo-a"), quiet);
    const first = await runGrpo(config("grpo-b"), { ...quiet, stopAfterSteps: 1 });
    const rest = await runGrpo(config("grpo-b"), { ...quiet, resume: "auto" });
    const h = [...first.history, ...rest.history];
    close(h.map((x) => x.rewardMean), full.history.map((x) => x.rewardMean), 1e-9, "reward");
    close(h.map((x) => x.loss), full.history.map((x) => x.loss), 1e-6, "loss");
  });
});
