// Shared by the test/models tests: tiny configs and seeded models without tokenizer files.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after } from "node:test";

import { buildModel, type Idefics3Config, type Idefics3PresetName, initWeights, type LlamaConfig, presetConfig, type PretrainedModel } from "../../src/models/index.js";
import type { DType } from "../../src/torch/index.js";

export const VOCAB = 96;
export const IMAGE_TOKEN = 90;
export const TOKENS = { vocabSize: VOCAB, bosTokenId: 1, eosTokenId: 2, padTokenId: 0, imageTokenId: IMAGE_TOKEN };

/** A preset's config with a small fixed vocabulary (no tokenizer needed). */
/** The configs these tests build (a family's own type, narrowed by modelType). */
export type ModelConfig = Idefics3Config | LlamaConfig;

export function testConfig(arch: "idefics3" | "llama", preset: Idefics3PresetName = "tiny"): ModelConfig {
  return presetConfig(arch, preset, TOKENS);
}

/** A seeded model of a config. */
export function seededModel(config: ModelConfig, seed = 0, dtype: DType = "float32"): PretrainedModel {
  const m = buildModel(config, { dtype: "float32" });
  initWeights(m, config.modelType === "idefics3" ? config.text.initializerRange : config.initializerRange, seed);
  if (dtype !== "float32") m.to({ dtype });
  return m.eval();
}

/** A fresh temporary folder, removed when the test file ends. */
export function tempDir(tag = "models"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vlm-grpo-${tag}-`));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
