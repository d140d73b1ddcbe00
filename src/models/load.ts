// Hugging Face checkpoint folders: config.json + model.safetensors (or shards
// + model.safetensors.index.json) + generation_config.json + tokenizer and
// processor files, read and written the way transformers' from_pretrained /
// save_pretrained do.
import fs from "node:fs";
import path from "node:path";

import { writeFolderAtomic, writeTextFileAtomic } from "../io/atomic.js";
import { DEFAULT_MAX_SHARD_BYTES, dtypeOfSafetensors, SafetensorsFolder, saveSafetensorsSharded } from "../io/safetensors.js";
import { describeKeyMismatch, type Module } from "../nn/index.js";
import { type Device, type DType, isFloatingDType, keep, noGrad, type Tensor, tidy } from "../torch/index.js";
import type { RawConfig } from "./configs.js";
import type { ModelPlacement } from "./llama.js";
import { configToJson, familyOf, resolveConfig } from "./registry.js";
import type { FamilyConfig, PretrainedModel } from "./vlm.js";

/** Tokenizer / processor / generation files copied beside saved weights (those that exist). */
export const COPIED_FILE_NAMES: readonly string[] = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
  "chat_template.json",
  "chat_template.jinja",
  "preprocessor_config.json",
  "processor_config.json",
  "generation_config.json",
];

/** Checkpoint keys that transformers ignores on load (non-persistent buffers saved by old versions). */
const IGNORED_KEY = /(^|\.)rotary_emb\.inv_freq$/;

const FLOAT_DTYPES: Record<string, DType> = { float32: "float32", bfloat16: "bfloat16", float16: "float16", float64: "float64" };

export interface LoadPretrainedOptions {
  /**
   * Parameter / compute dtype. Default "float32"; "auto" uses config.json's
   * torch_dtype (float32 when absent). Stored bf16/fp16/fp32 weights are converted.
   */
  dtype?: DType | "auto";
  /** Default "cpu". */
  device?: Device;
  /** Receives each loading warning (e.g. an untied lm_head). Default: written to stderr. */
  onWarning?: (message: string) => void;
}

/** Reads and resolves `dir/config.json`. */
export function readConfig(dir: string): FamilyConfig {
  const file = path.join(dir, "config.json");
  if (!fs.existsSync(file)) throw new Error(`loadPretrained: ${dir} has no config.json`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  return resolveConfig(raw as RawConfig, file);
}

/** A model for a config with uninitialized parameters (load weights or call initWeights next), built by its family. */
export function buildModel(config: FamilyConfig, placement: ModelPlacement = {}): PretrainedModel {
  return familyOf(config).build(config, placement);
}

/**
 * The parameters a checkpoint of this model holds, by key: the architecture's
 * own keys (from an unallocated-memory skeleton of the same config), looked
 * up in the model. Adapters or other modules added to the tree (LoRA's
 * lora_A / lora_B) are not part of it; a wrapper must keep the base
 * parameters under their original paths (LoraLinear keeps "weight", "bias").
 */
export function checkpointParameters(model: Module & { config?: FamilyConfig }): Map<string, Tensor> {
  if (!model.config) return model.stateDict();
  const skeleton = buildModel(model.config);
  const keys = skeleton.namedParameters().map(([k]) => k);
  skeleton.dispose();
  const out = new Map<string, Tensor>();
  for (const k of keys) {
    try {
      out.set(k, model.getParameter(k));
    } catch (e) {
      throw new Error(`checkpoint parameters: the model has no parameter '${k}' (${(e as Error).message})`);
    }
  }
  return out;
}

/** Options of loadWeights for families outside this file's own (a family-agnostic hook). */
export interface LoadWeightsOptions {
  /** The parameters to fill, by module path. Default checkpointParameters(model) (Llama / Idefics3). */
  parameters?: Map<string, Tensor>;
  /**
   * Maps a key as stored in the files to the module path it fills, for a
   * family whose checkpoints come in several key layouts (errors then name
   * module paths). Two stored keys that map to one path are an error.
   */
  renameKey?: (stored: string) => string;
}

/**
 * Copies a checkpoint folder's tensors into a model, one tensor at a time.
 * Strict: before any data is read, the headers are checked against the model
 * and one error names every missing, unexpected and mis-shaped key. Keys that
 * are tied aliases (lm_head.weight when tied) and rotary_emb.inv_freq buffers
 * are skipped, as transformers does.
 */
export function loadWeights(model: Module, dir: string, opts: LoadWeightsOptions = {}): void {
  const folder = SafetensorsFolder.open(dir);
  const params = opts.parameters ?? checkpointParameters(model as Module & { config?: FamilyConfig });
  const own = new Set(params.values());
  const aliases = new Set(model.allParameterPaths().filter((p) => !params.has(p) && own.has(model.getParameter(p))));
  const config = (model as unknown as { config?: FamilyConfig }).config;
  const familyKeys = config ? familyOf(config).checkpointKeys : undefined;
  const rename = opts.renameKey ?? familyKeys?.toModulePath ?? ((k: string) => k);
  const storedOf = new Map<string, string>(); // module path -> stored key
  for (const n of folder.names) {
    if (IGNORED_KEY.test(n)) continue;
    const k = rename(n);
    if (aliases.has(k)) continue;
    const prev = storedOf.get(k);
    if (prev !== undefined) throw new Error(`checkpoint ${dir}: tensors '${prev}' and '${n}' both load into '${k}'`);
    storedOf.set(k, n);
  }
  const given = new Map([...storedOf].map(([k, n]) => [k, folder.fileOf(n).entry(n).shape] as [string, number[]]));
  const expected = new Map([...params].map(([k, t]) => [k, t.shape] as [string, number[]]));
  const check = describeKeyMismatch(`checkpoint ${dir}`, expected, given, true);
  if (check.message) throw new Error(check.message);
  for (const n of storedOf.values()) {
    const stored = folder.fileOf(n).entry(n).dtype;
    const dt = dtypeOfSafetensors(stored);
    if (dt === null || !isFloatingDType(dt)) throw new Error(`checkpoint ${dir}: tensor '${n}' has dtype ${stored}; parameters must be floating point`);
  }
  noGrad(() => {
    for (const [k, n] of storedOf) {
      const t = folder.get(n);
      try {
        params.get(k)!.copy_(t);
      } finally {
        t.dispose();
      }
    }
  });
}

/** A tied parameter (e.g. lm_head.weight) stored with values other than its source's (e.g. the embeddings). */
export interface StoredTieConflict {
  /** Module path of the alias (the tied parameter the checkpoint also stores). */
  alias: string;
  /** Module path of the parameter it is tied to. */
  source: string;
}

/**
 * The tied aliases of `model` (lm_head.weight when the config ties it) that
 * the folder stores with values different from their source's stored values.
 * transformers 5.x (PreTrainedModel.tie_weights during from_pretrained) does
 * not tie such a pair: it warns and keeps both tensors. Equal copies (a
 * checkpoint that stores both, e.g. converted from .bin) tie as usual.
 */
export function storedTieConflicts(model: Module & { config?: FamilyConfig }, dir: string): StoredTieConflict[] {
  if (model.allParameterPaths().length === model.namedParameters().length) return []; // nothing tied: nothing to read
  const folder = SafetensorsFolder.open(dir);
  const params = checkpointParameters(model);
  const sourceOf = new Map<Tensor, string>([...params].map(([k, t]) => [t, k]));
  const familyKeys = model.config ? familyOf(model.config).checkpointKeys : undefined;
  const rename = familyKeys?.toModulePath ?? ((k: string) => k);
  const storedOf = new Map<string, string>(); // module path -> stored key
  for (const n of folder.names) if (!IGNORED_KEY.test(n)) storedOf.set(rename(n), n);
  const out: StoredTieConflict[] = [];
  for (const alias of model.allParameterPaths()) {
    if (params.has(alias)) continue;
    const source = sourceOf.get(model.getParameter(alias));
    const a = storedOf.get(alias);
    const b = source === undefined ? undefined : storedOf.get(source);
    if (source === undefined || a === undefined || b === undefined) continue;
    const ta = folder.get(a);
    const tb = folder.get(b);
    try {
      const same = ta.shape.length === tb.shape.length && ta.shape.every((d, i) => d === tb.shape[i]) && (tidy(() => ta.eq(tb).all().item()) as boolean);
      if (!same) out.push({ alias, source });
    } finally {
      ta.dispose();
      tb.dispose();
    }
  }
  return out;
}

/**
 * The raw config with word-embedding tying switched off: the top-level
 * tie_word_embeddings and, when present, text_config's (Qwen2-VL's config
 * forwards a true text_config flag to the top level).
 */
function untiedRaw(raw: RawConfig): RawConfig {
  const out: RawConfig = { ...raw, tie_word_embeddings: false };
  const text = raw.text_config;
  if (text && typeof text === "object" && !Array.isArray(text)) out.text_config = { ...(text as RawConfig), tie_word_embeddings: false };
  return out;
}

/**
 * Loads a checkpoint folder: config.json (any registered family, see
 * registry.ts), then the weights into a model built in the requested dtype
 * and device. Tying follows transformers 5.x: the family's config decides
 * (Idefics3: the top-level tie_word_embeddings only), except that a stored
 * lm_head.weight that differs from the stored embeddings unties them, with a
 * warning (`warnings`, also written to stderr unless `onWarning` is given);
 * the returned config then says untied, so a save writes both tensors.
 */
export async function loadPretrained(
  dir: string,
  opts: LoadPretrainedOptions = {},
): Promise<{ model: PretrainedModel; config: FamilyConfig; dir: string; warnings: string[] }> {
  let config = readConfig(dir);
  let dtype: DType;
  if (opts.dtype === "auto") {
    const td = config.raw.torch_dtype ?? config.raw.dtype;
    dtype = typeof td === "string" && FLOAT_DTYPES[td] ? FLOAT_DTYPES[td] : "float32";
  } else {
    dtype = opts.dtype ?? "float32";
  }
  if (!isFloatingDType(dtype)) throw new Error(`loadPretrained: dtype must be floating point, got ${dtype}`);
  const placement = { dtype, device: opts.device ?? "cpu" };
  const warnings: string[] = [];
  let model = buildModel(config, placement);
  try {
    const conflicts = storedTieConflicts(model, dir);
    if (conflicts.length > 0) {
      const pairs = conflicts.map((c) => `${c.alias} and ${c.source}`).join(", ");
      warnings.push(
        `${path.join(dir, "config.json")}: the config ties ${pairs}, but the checkpoint stores both with different values; loading them untied, as transformers 5.x does (set tie_word_embeddings: false in config.json to silence this)`,
      );
      model.dispose();
      config = resolveConfig(untiedRaw(config.raw), path.join(dir, "config.json"));
      model = buildModel(config, placement);
    }
    loadWeights(model, dir);
  } catch (e) {
    model.dispose();
    throw e;
  }
  const warn = opts.onWarning ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  for (const w of warnings) warn(w);
  return { model, config, dir, warnings };
}

// ---- saving --------------------------------------------------------------------

export interface SavePretrainedOptions {
  /** Largest shard in bytes, or a size string ("5GB" = 5e9, "500MB", "2GiB"). Default "5GB" as transformers. */
  maxShardSize?: number | string;
  /** Dtype of the saved weights (default: the parameters' own). Recorded as torch_dtype. */
  dtype?: DType;
  /** Folder to copy tokenizer / processor / generation files from (those of `copyFileNames` that exist). */
  copyFilesFrom?: string;
  /** File names copied from copyFilesFrom. Default COPIED_FILE_NAMES. */
  copyFileNames?: readonly string[];
}

/** Parses "5GB" (decimal), "2GiB" (binary), "500MB", "100KB", or a plain number of bytes. */
export function parseSize(size: number | string): number {
  if (typeof size === "number") {
    if (!(size > 0)) throw new Error(`maxShardSize must be positive, got ${size}`);
    return size;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*$/i.exec(size);
  if (!m) throw new Error(`maxShardSize: cannot read '${size}'; use bytes or e.g. "5GB", "500MB", "2GiB"`);
  const pow = " KMGT".indexOf(m[2].toUpperCase() || " ");
  const base = m[3] ? 1024 : 1000;
  const bytes = Math.floor(Number(m[1]) * base ** pow);
  if (!(bytes > 0)) throw new Error(`maxShardSize must be positive, got '${size}'`);
  return bytes;
}

/** generation_config.json as transformers derives it from a model config. */
export function generationConfigJson(config: FamilyConfig): RawConfig {
  return familyOf(config).generationConfig(config);
}

/**
 * Writes a complete checkpoint folder: weights (the architecture's keys only,
 * see checkpointParameters; model.safetensors, or
 * model-0000i-of-0000N.safetensors shards + model.safetensors.index.json,
 * metadata {"format": "pt"}; tied lm_head not stored), config.json (full
 * HF form with torch_dtype), generation_config.json (copied from
 * copyFilesFrom when it has one, else derived from the config) and the
 * tokenizer / processor files of copyFilesFrom. The folder is replaced
 * atomically: `outDir` holds the old content or the whole new one (files
 * already in outDir are not kept).
 */
export async function savePretrained(model: PretrainedModel, outDir: string, opts: SavePretrainedOptions = {}): Promise<{ files: string[] }> {
  const maxShardBytes = parseSize(opts.maxShardSize ?? DEFAULT_MAX_SHARD_BYTES);
  if (opts.dtype !== undefined && !isFloatingDType(opts.dtype)) throw new Error(`savePretrained: dtype must be floating point, got ${opts.dtype}`);
  const copyFrom = opts.copyFilesFrom;
  if (copyFrom !== undefined && !fs.existsSync(copyFrom)) throw new Error(`savePretrained: copyFilesFrom folder ${copyFrom} does not exist`);
  const copies = copyFrom ? (opts.copyFileNames ?? COPIED_FILE_NAMES).filter((n) => fs.existsSync(path.join(copyFrom, n))) : [];
  const state = checkpointParameters(model);
  const storedKey = familyOf(model.config).checkpointKeys?.toStoredKey ?? ((k: string) => k);
  const first = state.values().next().value as Tensor;
  const torchDtype = opts.dtype ?? first.dtype;
  // Converted copies exist only while writing.
  const tensors = new Map<string, Tensor>();
  const owned: Tensor[] = [];
  for (const [k, t] of state) {
    if (isFloatingDType(t.dtype) && t.dtype !== torchDtype) {
      const c = keep(noGrad(() => t.to(torchDtype)));
      owned.push(c);
      tensors.set(storedKey(k), c);
    } else {
      tensors.set(storedKey(k), t);
    }
  }
  let files: string[] = [];
  try {
    writeFolderAtomic(outDir, (tmp) => {
      files = saveSafetensorsSharded(tmp, tensors, { maxShardBytes }).files;
      writeTextFileAtomic(path.join(tmp, "config.json"), JSON.stringify(configToJson(model.config, { torchDtype }), null, 2) + "\n");
      files.push("config.json");
      for (const name of copies) {
        fs.copyFileSync(path.join(copyFrom!, name), path.join(tmp, name));
        files.push(name);
      }
      if (!copies.includes("generation_config.json")) {
        writeTextFileAtomic(path.join(tmp, "generation_config.json"), JSON.stringify(generationConfigJson(model.config), null, 2) + "\n");
        files.push("generation_config.json");
      }
    });
  } finally {
    for (const t of owned) t.dispose();
  }
  return { files: files.sort() };
}
