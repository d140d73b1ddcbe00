// Writes a complete, randomly initialized model folder from a family's preset:
// weights, config.json, generation_config.json, tokenizer files and (vision
// families) image processor files, ready for loadPretrained and for Python
// transformers. The family supplies the preset's files and config and its
// init; this file stages, builds and saves.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { type DType, isFloatingDType } from "../torch/index.js";
import { savePretrained } from "./load.js";
import { familyByName, type FamilyInitOptions } from "./registry.js";
import type { FamilyConfig } from "./vlm.js";

export interface InitModelOptions {
  /** A registered family name (--arch): "idefics3", "llama", ... */
  arch: string;
  /** One of the family's presets. */
  preset: string;
  /** Folder to write (replaced atomically if it exists). */
  outDir: string;
  /** Seed of the weight init (default 0). */
  seed?: number;
  /** Dtype of the saved weights (default float32). */
  dtype?: DType;
  /** Std of the normal init (config initializer_range; default the preset's, 0.02 as HF's). Recorded in config.json. */
  initializerRange?: number;
  /** Vision tower init (vision families): "initializer_range" (HF's, default) or "siglip" (SigLIP's own scheme; learns faster from scratch). */
  visionInit?: FamilyInitOptions["visionInit"];
}

export interface InitModelResult {
  dir: string;
  config: FamilyConfig;
  numParameters: number;
  /** Vocabulary size of the written tokenizer (the config's vocab_size). */
  vocabSize: number;
}

/** Writes a randomly initialized model folder for a family's preset. */
export async function initModel(opts: InitModelOptions): Promise<InitModelResult> {
  const family = familyByName(opts.arch);
  if (!family.presets.includes(opts.preset)) throw new Error(`unknown ${family.name} preset '${opts.preset}'; choose one of: ${family.presets.join(", ")}`);
  const seed = opts.seed ?? 0;
  const dtype = opts.dtype ?? "float32";
  if (!isFloatingDType(dtype)) throw new Error(`initModel: dtype must be floating point, got ${dtype}`);
  const range = opts.initializerRange;
  if (range !== undefined && !(range > 0 && Number.isFinite(range))) throw new Error(`initModel: initializerRange must be a positive number, got ${range}`);

  // Tokenizer and processor files go to a staging folder first (their writers
  // are async); everything then lands in outDir in one atomic folder write.
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-grpo-init-"));
  try {
    const config = await family.initPreset(opts.preset, staging, { initializerRange: range });
    const model = family.build(config, { dtype: "float32" });
    try {
      family.initWeights(model, config, seed, { visionInit: opts.visionInit });
      const files = fs
        .readdirSync(staging, { withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => e.name);
      await savePretrained(model, opts.outDir, { dtype, copyFilesFrom: staging, copyFileNames: files });
      const vocab = (config.raw.vocab_size ?? (config.raw.text_config as { vocab_size?: number } | undefined)?.vocab_size) as number;
      return { dir: opts.outDir, config, numParameters: model.numParameters(), vocabSize: vocab };
    } finally {
      model.dispose();
    }
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
