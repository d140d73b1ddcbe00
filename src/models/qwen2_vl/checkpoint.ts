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
import fs from "node:fs";
import path from "node:path";

import { writeFolderAtomic, writeTextFileAtomic } from "../../io/atomic.js";
import { DEFAULT_MAX_SHARD_BYTES, saveSafetensorsSharded } from "../../io/safetensors.js";
import { type Device, type DType, isFloatingDType, keep, noGrad, type Tensor } from "../../torch/index.js";
import type { ModelPlacement } from "../llama.js";
import { COPIED_FILE_NAMES, loadWeights, parseSize } from "../load.js";
import { qwenConfigToJson, qwenGenerationConfigJson, type QwenVLConfig, type RawConfig, resolveQwenConfig } from "./config.js";
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
  const file = path.join(dir, "config.json");
  if (!fs.existsSync(file)) throw new Error(`loadQwenPretrained: ${dir} has no config.json`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  return resolveQwenConfig(raw as RawConfig, file);
}

/** A model for a config with uninitialized parameters (load weights or init them next). */
export function buildQwenModel(config: QwenVLConfig, placement: ModelPlacement = {}): QwenVLForConditionalGeneration {
  return new QwenVLForConditionalGeneration(config, placement);
}

/**
 * Loads a folder's weights into a model, strictly (every missing, unexpected
 * or mis-shaped key named in one error, before any data is read), from either
 * key layout.
 */
export function loadQwenWeights(model: QwenVLForConditionalGeneration, dir: string): void {
  loadWeights(model, dir, { parameters: model.checkpointParameters(), renameKey: qwenKeyToModulePath });
}

const FLOAT_DTYPES: Record<string, DType> = { float32: "float32", bfloat16: "bfloat16", float16: "float16", float64: "float64" };

export interface LoadQwenOptions {
  /** Parameter / compute dtype. Default "float32"; "auto": config.json's dtype / torch_dtype (float32 when absent). */
  dtype?: DType | "auto";
  /** Default "cpu". */
  device?: Device;
}

/** Reads config.json, builds the model in the requested dtype and device, loads the weights. */
export async function loadQwenPretrained(dir: string, opts: LoadQwenOptions = {}): Promise<{ model: QwenVLForConditionalGeneration; config: QwenVLConfig; dir: string }> {
  const config = readQwenConfig(dir);
  let dtype: DType;
  if (opts.dtype === "auto") dtype = (config.dtype && FLOAT_DTYPES[config.dtype]) || "float32";
  else dtype = opts.dtype ?? "float32";
  if (!isFloatingDType(dtype)) throw new Error(`loadQwenPretrained: dtype must be floating point, got ${dtype}`);
  const model = buildQwenModel(config, { dtype, device: opts.device ?? "cpu" });
  try {
    loadQwenWeights(model, dir);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, config, dir };
}

export interface SaveQwenOptions {
  /** Largest shard in bytes, or a size string ("5GB", "500MB", "2GiB"). Default "5GB" as transformers. */
  maxShardSize?: number | string;
  /** Dtype of the saved weights (default: the parameters' own). Recorded as config.json's "dtype". */
  dtype?: DType;
  /** Folder to copy tokenizer / processor / generation files from (those of `copyFileNames` that exist). */
  copyFilesFrom?: string;
  /** File names copied from copyFilesFrom. Default load.ts's COPIED_FILE_NAMES. */
  copyFileNames?: readonly string[];
}

/**
 * Writes a checkpoint folder as transformers 5.18's save_pretrained does:
 * weights in the hub key layout (model.safetensors, or shards + index),
 * config.json, generation_config.json (copied when copyFilesFrom has one,
 * else derived from the config) and the tokenizer / processor files. The
 * folder is replaced atomically.
 */
export async function saveQwenPretrained(model: QwenVLForConditionalGeneration, outDir: string, opts: SaveQwenOptions = {}): Promise<{ files: string[] }> {
  const maxShardBytes = parseSize(opts.maxShardSize ?? DEFAULT_MAX_SHARD_BYTES);
  if (opts.dtype !== undefined && !isFloatingDType(opts.dtype)) throw new Error(`saveQwenPretrained: dtype must be floating point, got ${opts.dtype}`);
  const copyFrom = opts.copyFilesFrom;
  if (copyFrom !== undefined && !fs.existsSync(copyFrom)) throw new Error(`saveQwenPretrained: copyFilesFrom folder ${copyFrom} does not exist`);
  const copies = copyFrom ? (opts.copyFileNames ?? COPIED_FILE_NAMES).filter((n) => fs.existsSync(path.join(copyFrom, n))) : [];
  const params = model.checkpointParameters();
  const first = params.values().next().value as Tensor;
  const dtype = opts.dtype ?? first.dtype;
  const tensors = new Map<string, Tensor>();
  const owned: Tensor[] = [];
  const own = new Set<Tensor>();
  for (const [k, t] of params) {
    if (own.has(t)) continue; // a tied lm_head is the embedding's tensor: stored once
    own.add(t);
    let out = t;
    if (isFloatingDType(t.dtype) && t.dtype !== dtype) {
      out = keep(noGrad(() => t.to(dtype)));
      owned.push(out);
    }
    tensors.set(qwenModulePathToKey(k), out);
  }
  let files: string[] = [];
  try {
    writeFolderAtomic(outDir, (tmp) => {
      files = saveSafetensorsSharded(tmp, tensors, { maxShardBytes }).files;
      writeTextFileAtomic(path.join(tmp, "config.json"), JSON.stringify(qwenConfigToJson(model.config, { dtype }), null, 2) + "\n");
      files.push("config.json");
      for (const name of copies) {
        fs.copyFileSync(path.join(copyFrom!, name), path.join(tmp, name));
        files.push(name);
      }
      if (!copies.includes("generation_config.json")) {
        writeTextFileAtomic(path.join(tmp, "generation_config.json"), JSON.stringify(qwenGenerationConfigJson(model.config), null, 2) + "\n");
        files.push("generation_config.json");
      }
    });
  } finally {
    for (const t of owned) t.dispose();
  }
  return { files: files.sort() };
}
