// Random initialization of Qwen2-VL / Qwen2.5-VL as transformers'
// _init_weights does: Linear and the Conv3d patch embedding ~ N(0, std^2) with
// zero biases, embedding rows ~ N(0, std^2) with the padding row zeroed,
// LayerNorm (1, 0), RMSNorm 1; std is vision_config.initializer_range for the
// vision tower and text_config.initializer_range elsewhere. Draws come from
// one seeded generator in module order, so a seed gives the same weights on
// every run; each draw is made in float32 and copied into the parameter's
// dtype (bf16 models initialize without a float32 copy of the whole model).
//
// initQwenModel writes a complete random model folder from a preset: weights,
// config.json, generation_config.json, the tokenizer (tokenizer_files.ts) and
// preprocessor_config.json, ready for loadQwenPretrained and for transformers.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { writeTextFileAtomic } from "../../io/atomic.js";
import { Embedding, LayerNorm, Linear, type Module, RMSNorm } from "../../nn/index.js";
import { type DType, noGrad } from "../../torch/index.js";
import { ParamFiller } from "../init_weights.js";
import { initModel, type InitModelResult } from "../init_model.js";
import type { QwenFamily, QwenVLConfig } from "./config.js";
import { QWEN_IMAGE_PROCESSOR_DEFAULTS, qwenPreprocessorJson } from "./image_processor.js";
import type { QwenVLForConditionalGeneration } from "./model.js";
import { qwenPresetConfig, qwenPresetImageLimits, type QwenPresetName } from "./presets.js";
import { writeQwenTokenizerFiles } from "./tokenizer_files.js";
import { PatchProjection } from "./vision.js";

export interface QwenInitWeightsOptions {
  seed?: number;
  /**
   * "initializer_range" (default): transformers' N(0, std^2) everywhere;
   * "siglip": the vision tower as a ViT trained from scratch is usually
   * initialized (Xavier-uniform Linear layers, LeCun-normal patch projection),
   * as the Idefics3 family's option of the same name does for SigLIP.
   */
  visionInit?: "initializer_range" | "siglip";
  /** Std of the decoder and lm_head (default text_config.initializer_range). */
  textStd?: number;
  /** Std of the vision tower (default vision_config.initializer_range). */
  visionStd?: number;
}

/** Fills every parameter of a freshly built model; throws naming any parameter without a rule. */
export function initQwenWeights(model: QwenVLForConditionalGeneration, opts: QwenInitWeightsOptions = {}): void {
  const c = model.config;
  const f = new ParamFiller(opts.seed ?? 0);
  const siglip = opts.visionInit === "siglip";
  noGrad(() => {
    for (const [name, m] of (model as Module).namedModules()) {
      const inVision = name.startsWith("model.visual");
      const std = inVision ? (opts.visionStd ?? c.vision.initializerRange) : (opts.textStd ?? c.text.initializerRange);
      if (siglip && inVision && m instanceof Linear) {
        f.xavierUniform(m.weight);
        f.fill(m.bias, 0);
      } else if (siglip && inVision && m instanceof PatchProjection) {
        f.lecunNormal(m.weight);
      } else if (m instanceof Linear) {
        f.normal(m.weight, std);
        f.fill(m.bias, 0);
      } else if (m instanceof PatchProjection) {
        f.normal(m.weight, std);
      } else if (m instanceof Embedding) {
        f.embedding(m, std);
      } else if (m instanceof LayerNorm) {
        f.fill(m.weight, 1);
        f.fill(m.bias, 0);
      } else if (m instanceof RMSNorm) {
        f.fill(m.weight, 1);
      }
    }
  });
  f.check(model, "initQwenWeights");
}

/**
 * A preset's tokenizer (tokenizer_files.ts) and preprocessor_config.json
 * written into `dir`, and its resolved config (the registry's initPreset).
 */
export async function initQwenPreset(family: QwenFamily, preset: QwenPresetName, dir: string, opts: { initializerRange?: number } = {}): Promise<QwenVLConfig> {
  const limits = qwenPresetImageLimits(family, preset);
  const tok = writeQwenTokenizerFiles(dir);
  const ids = tok.specialTokenIds;
  const config = qwenPresetConfig(family, preset, {
    vocabSize: tok.vocabSize,
    eosTokenId: tok.eosTokenId,
    padTokenId: tok.padTokenId,
    imageTokenId: ids["<|image_pad|>"],
    videoTokenId: ids["<|video_pad|>"],
    visionStartTokenId: ids["<|vision_start|>"],
    visionEndTokenId: ids["<|vision_end|>"],
  });
  const range = opts.initializerRange;
  if (range !== undefined) {
    config.text.initializerRange = range;
    config.vision.initializerRange = range;
  }
  const processorClass = family === "qwen2_vl" ? "Qwen2VLProcessor" : "Qwen2_5_VLProcessor";
  const pre = qwenPreprocessorJson({ ...QWEN_IMAGE_PROCESSOR_DEFAULTS, minPixels: limits.minPixels, maxPixels: limits.maxPixels }, processorClass);
  writeTextFileAtomic(path.join(dir, "preprocessor_config.json"), JSON.stringify(pre, null, 2) + "\n");
  return config;
}

export interface InitQwenModelOptions {
  /** "qwen2_vl" or "qwen2_5_vl". */
  family: QwenFamily;
  preset: QwenPresetName;
  /** Folder to write (replaced atomically if it exists). */
  outDir: string;
  /** Seed of the weight init (default 0). */
  seed?: number;
  /** Dtype of the saved weights (default float32). */
  dtype?: DType;
  /** Std of the normal init for every part (default: the configs' initializer_range, 0.02). Recorded in config.json. */
  initializerRange?: number;
  visionInit?: QwenInitWeightsOptions["visionInit"];
}

/** Writes a randomly initialized Qwen2-VL / Qwen2.5-VL folder for a preset (init-model with this family). */
export async function initQwenModel(opts: InitQwenModelOptions): Promise<InitModelResult & { config: QwenVLConfig }> {
  const r = await initModel({ arch: opts.family, preset: opts.preset, outDir: opts.outDir, seed: opts.seed, dtype: opts.dtype, initializerRange: opts.initializerRange, visionInit: opts.visionInit });
  return r as InitModelResult & { config: QwenVLConfig };
}
