// A tiny synthetic data set and a tiny random model in a temporary folder,
// and run configs over them, for the training tests.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type RunConfig, runConfigSchema } from "../../src/config/run_config.js";
import { validate } from "../../src/config/schema.js";
import { synthesizeDataset } from "../../src/data/synth/writer.js";
import { initModel } from "../../src/models/init_model.js";

export const FIXTURES = fileURLToPath(new URL("../../../test/fixtures", import.meta.url));
export const LENGTH_REWARD = path.join(FIXTURES, "rewards", "length_reward.mjs");

export interface TinyRun {
  root: string;
  dataPath: string;
  modelDir: string;
  /** A validated config writing to root/out, with `patch` merged one level deep per section. */
  config(out: string, patch?: Record<string, unknown>): RunConfig;
  cleanup(): void;
}

export async function makeTinyRun(tag: string): Promise<TinyRun> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `vlm-${tag}-`));
  const ds = await synthesizeDataset({ outDir: path.join(root, "data"), n: 48, imageSize: 32, seed: 1 });
  const modelDir = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "model"), seed: 2 })).dir;
  const config = (out: string, patch: Record<string, unknown> = {}): RunConfig => {
    const raw: Record<string, unknown> = {
      model: modelDir,
      output_dir: path.join(root, out),
      seed: 3,
      data: { path: ds.manifest },
      prompt: { system_prompt: "", user_prompt: "Categories: {categories}?" },
      lora: { enabled: true, rank: 4, alpha: 8, dropout: 0.1 },
      sft: { max_steps: 3, micro_batch_size: 4, grad_accum: 1, lr: 1e-3, log_every: 1, eval_examples: 4 },
      grpo: { steps: 2, prompts_per_step: 2, num_generations: 4, max_completion_length: 6, lr: 1e-3, log_every: 1, final_eval: false, log_completions_every: 0, rewards: [{ module: LENGTH_REWARD }] },
      eval: { batch_size: 4, max_new_tokens: 6, report: false },
    };
    for (const [k, v] of Object.entries(patch)) raw[k] = typeof v === "object" && v && !Array.isArray(v) ? { ...(raw[k] as object), ...v } : v;
    return validate(runConfigSchema, raw, { file: "test config" });
  };
  return { root, dataPath: ds.manifest, modelDir, config, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

export const quiet = { log: () => {}, progress: false } as const;

/** A collecting logger. */
export function lines(): { log: (l: string) => void; progress: false; text: () => string } {
  const out: string[] = [];
  return { log: (l: string) => out.push(l), progress: false, text: () => out.join("\n") };
}
