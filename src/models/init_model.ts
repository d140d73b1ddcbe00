// Writes a complete, randomly initialized model folder from a preset: weights,
// config.json, generation_config.json, tokenizer files and (idefics3) image
// processor files, ready for loadPretrained and for Python transformers.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { type DType, isFloatingDType } from "../torch/index.js";
import type { ModelConfig } from "./configs.js";
import { initWeights } from "./init_weights.js";
import { buildModel, savePretrained } from "./load.js";
import { type Arch, presetConfig, presetFiles, type PresetName, type PresetTokens } from "./presets.js";

/** What writeTokenizerFiles (src/io/tokenizer_builder.ts) returns. */
export interface TokenizerWriteResult {
  vocabSize: number;
  specialTokenIds: Record<string, number>;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId: number;
}

/** The file writers initModel uses; replaceable (tests, other tokenizers). */
export interface InitModelWriters {
  writeTokenizerFiles(dir: string, opts: { vocabSize?: number }): Promise<TokenizerWriteResult>;
  writeProcessorFiles(dir: string, opts: { imageSize: number; imageSeqLen: number; doImageSplitting: boolean; longestEdge?: number }): Promise<void>;
}

export interface InitModelOptions {
  /** "idefics3" (vision-language) or "llama" (text only). */
  arch: Arch;
  preset: PresetName;
  /** Folder to write (replaced atomically if it exists). */
  outDir: string;
  /** Seed of the weight init (default 0). */
  seed?: number;
  /** Dtype of the saved weights (default float32). */
  dtype?: DType;
  /**
   * Std of the normal init (config initializer_range; default the preset's,
   * 0.02 as HF's). Recorded in config.json.
   */
  initializerRange?: number;
  /** Vision tower init: "initializer_range" (HF Idefics3's, default) or "siglip" (SigLIP's own scheme; learns faster from scratch). */
  visionInit?: "initializer_range" | "siglip";
  /** Override the tokenizer / processor writers (default: src/io/tokenizer_builder.ts, src/io/image_processor_config.ts). */
  writers?: Partial<InitModelWriters>;
}

export interface InitModelResult {
  dir: string;
  config: ModelConfig;
  numParameters: number;
  tokenizer: TokenizerWriteResult;
}

/** The writers of src/io, imported when first needed (only those not overridden). */
async function resolveWriters(arch: Arch, given: Partial<InitModelWriters> = {}): Promise<InitModelWriters> {
  const writeTokenizerFiles = given.writeTokenizerFiles ?? (await import("../io/tokenizer_builder.js")).writeTokenizerFiles;
  let writeProcessorFiles = given.writeProcessorFiles;
  if (!writeProcessorFiles && arch === "idefics3") writeProcessorFiles = (await import("../io/image_processor_config.js")).writeProcessorFiles;
  const none = async () => {
    throw new Error("initModel: no processor writer");
  };
  return { writeTokenizerFiles, writeProcessorFiles: writeProcessorFiles ?? none };
}

/** Writes a randomly initialized model folder for a preset (see presets.ts). */
export async function initModel(opts: InitModelOptions): Promise<InitModelResult> {
  const { arch, preset, outDir } = opts;
  const seed = opts.seed ?? 0;
  const dtype = opts.dtype ?? "float32";
  if (!isFloatingDType(dtype)) throw new Error(`initModel: dtype must be floating point, got ${dtype}`);
  const files = presetFiles(preset);
  const writers = await resolveWriters(arch, opts.writers);

  // Tokenizer and processor files go to a staging folder first (their writers
  // are async); everything then lands in outDir in one atomic folder write.
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-grpo-init-"));
  try {
    const tok = await writers.writeTokenizerFiles(staging, files.padVocabTo !== undefined ? { vocabSize: files.padVocabTo } : {});
    const tokens: PresetTokens = {
      vocabSize: tok.vocabSize,
      bosTokenId: tok.bosTokenId,
      eosTokenId: tok.eosTokenId,
      padTokenId: tok.padTokenId,
      imageTokenId: tok.specialTokenIds["<image>"],
    };
    if (arch === "idefics3" && tokens.imageTokenId === undefined) throw new Error("initModel: the tokenizer writer returned no id for '<image>'");
    const config = presetConfig(arch, preset, tokens);
    const range = opts.initializerRange;
    if (range !== undefined) {
      if (!(range > 0 && Number.isFinite(range))) throw new Error(`initModel: initializerRange must be a positive number, got ${range}`);
      if (config.modelType === "idefics3") config.text.initializerRange = range;
      else config.initializerRange = range;
    }
    if (config.modelType === "idefics3") {
      await writers.writeProcessorFiles(staging, {
        imageSize: config.vision.imageSize,
        imageSeqLen: config.imageSeqLen,
        doImageSplitting: files.doImageSplitting,
        ...(files.longestEdge !== undefined ? { longestEdge: files.longestEdge } : {}),
      });
    }
    const model = buildModel(config, { dtype: "float32" });
    try {
      const std = config.modelType === "idefics3" ? config.text.initializerRange : config.initializerRange;
      initWeights(model, std, seed, { vision: opts.visionInit });
      await savePretrained(model, outDir, { dtype, copyFilesFrom: staging, copyFileNames: fs.readdirSync(staging, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) });
      return { dir: outDir, config, numParameters: model.numParameters(), tokenizer: tok };
    } finally {
      model.dispose();
    }
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
