// Qwen2-VL / Qwen2.5-VL checkpoint folders: read, build, load, save.
//
// Key layouts. The module tree is transformers 5's (model.visual.*,
// model.language_model.*, lm_head.*). Files come in two layouts and both load:
//   hub (transformers 4, and what transformers 5.18's save_pretrained writes,
//   since it reverts its key renaming on save): visual.*, model.* (the
//   decoder: model.embed_tokens, model.layers.N..., model.norm), lm_head.*;
//   module paths (a state dict saved without that reversal): model.visual.*,
//   model.language_model.*, lm_head.*.
// Saving writes the hub layout, as transformers 5.18 does, and config.json in
// the nested layout with "dtype" (see config.ts); a tied lm_head is not stored.
import type { ModelPlacement } from "../llama.js";
import { loadPretrained, type LoadPretrainedOptions, loadWeights, readConfig, savePretrained, type SavePretrainedOptions } from "../load.js";
import type { QwenVLConfig } from "./config.js";
import { QwenVLForConditionalGeneration } from "./model.js";

/** A stored key (either layout) -> the module path it fills. */
export function qwenKeyToModulePath(stored: string): string {
  if (stored.startsWith("visual.")) return `model.${stored}`;
  if (stored.startsWith("model.") && !stored.startsWith("model.visual.") && !stored.startsWith("model.language_model.")) {
    return `model.language_model.${stored.slice("model.".length)}`;
  }
  return stored;
}

/** A module path -> the key transformers 5.18 stores it under (the hub layout). */
export function qwenModulePathToKey(modulePath: string): string {
  if (modulePath.startsWith("model.visual.")) return modulePath.slice("model.".length);
  if (modulePath.startsWith("model.language_model.")) return `model.${modulePath.slice("model.language_model.".length)}`;
  return modulePath;
}

/** Reads and resolves `dir/config.json` as a Qwen2-VL / Qwen2.5-VL config. */
export function readQwenConfig(dir: string): QwenVLConfig {
  const c = readConfig(dir);
  if (c.modelType !== "qwen2_vl" && c.modelType !== "qwen2_5_vl") throw new Error(`${dir}/config.json: not a Qwen2-VL / Qwen2.5-VL config (model_type ${c.modelType})`);
  return c as QwenVLConfig;
}

/** A model for a config with uninitialized parameters (load weights or init them next). */
export function buildQwenModel(config: QwenVLConfig, placement: ModelPlacement = {}): QwenVLForConditionalGeneration {
  return new QwenVLForConditionalGeneration(config, placement);
}

/**
 * Loads a folder's weights into a model, strictly (every missing, unexpected
 * or mis-shaped key named in one error, before any data is read), from either
 * key layout (the family's checkpointKeys map them).
 */
export function loadQwenWeights(model: QwenVLForConditionalGeneration, dir: string): void {
  loadWeights(model, dir, { parameters: model.checkpointParameters() });
}

/** loadPretrained, typed for this family (dtype "auto" reads config.json's dtype / torch_dtype). */
export async function loadQwenPretrained(
  dir: string,
  opts: LoadPretrainedOptions = {},
): Promise<{ model: QwenVLForConditionalGeneration; config: QwenVLConfig; dir: string; warnings: string[] }> {
  readQwenConfig(dir); // a clear error for another family's folder
  const r = await loadPretrained(dir, opts);
  return { ...r, model: r.model as QwenVLForConditionalGeneration, config: r.config as QwenVLConfig };
}

/**
 * Writes a checkpoint folder as transformers 5.18's save_pretrained does
 * (savePretrained with this family's hub key layout and nested config.json
 * with "dtype"; a tied lm_head is not stored).
 */
export async function saveQwenPretrained(model: QwenVLForConditionalGeneration, outDir: string, opts: SavePretrainedOptions = {}): Promise<{ files: string[] }> {
  return savePretrained(model, outDir, opts);
}
