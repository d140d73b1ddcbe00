// The Idefics3 (SmolVLM) image processor settings: preprocessor_config.json
// (the image processor) and processor_config.json (image_seq_len), read into
// one resolved, validated object, and written in transformers' format.
//
// Two tiers: Idefics3PreprocessorJson mirrors the file (every key optional);
// Idefics3ImageProcessorConfig has every field filled, with transformers'
// defaults (Idefics3ImageProcessor.__init__ and Idefics3Processor.__init__)
// for absent keys. Unknown keys (image_processor_type, video settings, ...)
// are ignored.
import fs from "node:fs";
import path from "node:path";
import { writeTextFileAtomic } from "../../io/atomic.js";
import { PIL_RESAMPLE, PIL_RESAMPLE_NAMES, type PilResample } from "../../io/image_resample.js";

/** preprocessor_config.json as transformers writes it for Idefics3ImageProcessor (all keys optional). */
export interface Idefics3PreprocessorJson {
  image_processor_type?: string;
  do_convert_rgb?: boolean;
  do_resize?: boolean;
  size?: { longest_edge?: number; height?: number; width?: number };
  resample?: number;
  do_image_splitting?: boolean;
  max_image_size?: { longest_edge?: number };
  do_rescale?: boolean;
  rescale_factor?: number;
  do_normalize?: boolean;
  image_mean?: number | number[];
  image_std?: number | number[];
  do_pad?: boolean;
  [key: string]: unknown;
}

/** processor_config.json of an Idefics3Processor. */
export interface Idefics3ProcessorJson {
  image_seq_len?: number;
  processor_class?: string;
  /** transformers 5 may nest the image processor's settings here instead of preprocessor_config.json. */
  image_processor?: Idefics3PreprocessorJson;
  [key: string]: unknown;
}

/** The first resize: the longest edge to a length (aspect kept), or an exact height x width. */
export type Idefics3ResizeSize = { longestEdge: number } | { height: number; width: number };

/** Resolved image processor settings; field names follow the JSON keys. */
export interface Idefics3ImageProcessorConfig {
  /** do_convert_rgb (default true). Decoding always yields RGB; kept for round-trips. */
  doConvertRgb: boolean;
  /** do_resize (default true): resize to `size` first. */
  doResize: boolean;
  /** size (default {longest_edge: 4 * 364}). */
  size: Idefics3ResizeSize;
  /** resample, a PIL filter number (default 1 = LANCZOS). */
  resample: PilResample;
  /** do_image_splitting (default true): tiles of maxImageSize plus a global image. */
  doImageSplitting: boolean;
  /** max_image_size.longest_edge (default 364): the tile side S = the vision tower's image_size. */
  maxImageSize: number;
  /** do_rescale (default true). */
  doRescale: boolean;
  /** rescale_factor (default 1/255). */
  rescaleFactor: number;
  /** do_normalize (default true). */
  doNormalize: boolean;
  /** image_mean per channel (default [0.5, 0.5, 0.5]). */
  imageMean: [number, number, number];
  /** image_std per channel (default [0.5, 0.5, 0.5]). */
  imageStd: [number, number, number];
  /** do_pad (default true): transformers pads images to one size and returns a pixel mask. */
  doPad: boolean;
  /** processor_config.json image_seq_len (default 169): <image> tokens per tile. */
  imageSeqLen: number;
}

/** transformers' defaults (Idefics3ImageProcessor, Idefics3Processor). */
export const IDEFICS3_DEFAULTS: Readonly<Idefics3ImageProcessorConfig> = Object.freeze({
  doConvertRgb: true,
  doResize: true,
  size: { longestEdge: 4 * 364 },
  resample: PIL_RESAMPLE.LANCZOS,
  doImageSplitting: true,
  maxImageSize: 364,
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  imageMean: [0.5, 0.5, 0.5] as [number, number, number],
  imageStd: [0.5, 0.5, 0.5] as [number, number, number],
  doPad: true,
  imageSeqLen: 169,
});

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const show = (v: unknown) => JSON.stringify(v) ?? String(v);

function bool(o: Record<string, unknown>, key: string, dflt: boolean, file: string): boolean {
  const v = o[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "boolean") throw new Error(`${file}: ${key} must be true or false, got ${show(v)}`);
  return v;
}

function posInt(v: unknown, file: string, key: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new Error(`${file}: ${key} must be a positive integer, got ${show(v)}`);
  return v;
}

function triple(v: unknown, file: string, key: string, dflt: readonly number[], nonzero: boolean): [number, number, number] {
  let t: number[];
  if (v === undefined || v === null) t = [...dflt];
  else if (typeof v === "number") t = [v, v, v];
  else if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === "number")) t = v as number[];
  else throw new Error(`${file}: ${key} must be a number or a list of 3 numbers (one per RGB channel), got ${show(v)}`);
  if (t.some((x) => !Number.isFinite(x) || (nonzero && x === 0))) throw new Error(`${file}: ${key} must hold finite${nonzero ? ", non-zero" : ""} numbers, got ${show(v)}`);
  return [t[0], t[1], t[2]];
}

function sizeOf(v: unknown, file: string): Idefics3ResizeSize {
  if (v === undefined || v === null) return { ...IDEFICS3_DEFAULTS.size };
  if (!isObj(v)) throw new Error(`${file}: size must be {"longest_edge": N} or {"height": H, "width": W}, got ${show(v)}`);
  if (v.longest_edge !== undefined) return { longestEdge: posInt(v.longest_edge, file, "size.longest_edge") };
  if (v.height !== undefined && v.width !== undefined) return { height: posInt(v.height, file, "size.height"), width: posInt(v.width, file, "size.width") };
  throw new Error(`${file}: size must have "longest_edge" (or "height" and "width"), got ${show(v)}`);
}

/**
 * Resolves the parsed JSON of preprocessor_config.json and processor_config.json
 * (either may be {}) into a full config. `files` name them in errors.
 */
export function resolveImageProcessorConfig(
  pre: Idefics3PreprocessorJson,
  proc: Idefics3ProcessorJson = {},
  files: { preprocessor?: string; processor?: string } = {},
): Idefics3ImageProcessorConfig {
  const pf = files.preprocessor ?? "preprocessor_config.json";
  const cf = files.processor ?? "processor_config.json";
  if (!isObj(pre)) throw new Error(`${pf}: expected a JSON object`);
  if (!isObj(proc)) throw new Error(`${cf}: expected a JSON object`);
  const D = IDEFICS3_DEFAULTS;

  let resample: PilResample = D.resample;
  if (pre.resample !== undefined && pre.resample !== null) {
    const r = pre.resample;
    if (typeof r !== "number" || !(r in PIL_RESAMPLE_NAMES)) {
      throw new Error(`${pf}: resample must be a PIL filter number 0..5 (${Object.entries(PIL_RESAMPLE_NAMES).map(([k, n]) => `${k}=${n}`).join(", ")}), got ${show(r)}`);
    }
    resample = r as PilResample;
  }

  let maxImageSize = D.maxImageSize;
  if (pre.max_image_size !== undefined && pre.max_image_size !== null) {
    const m = pre.max_image_size;
    if (!isObj(m) || m.longest_edge === undefined) throw new Error(`${pf}: max_image_size must be {"longest_edge": positive integer}, got ${show(m)}`);
    maxImageSize = posInt(m.longest_edge, pf, "max_image_size.longest_edge");
  }

  let rescaleFactor = D.rescaleFactor;
  if (pre.rescale_factor !== undefined && pre.rescale_factor !== null) {
    const f = pre.rescale_factor;
    if (typeof f !== "number" || !Number.isFinite(f) || f <= 0) throw new Error(`${pf}: rescale_factor must be a positive number, got ${show(f)}`);
    rescaleFactor = f;
  }

  const seq = proc.image_seq_len ?? D.imageSeqLen;
  return {
    doConvertRgb: bool(pre, "do_convert_rgb", D.doConvertRgb, pf),
    doResize: bool(pre, "do_resize", D.doResize, pf),
    size: sizeOf(pre.size, pf),
    resample,
    doImageSplitting: bool(pre, "do_image_splitting", D.doImageSplitting, pf),
    maxImageSize,
    doRescale: bool(pre, "do_rescale", D.doRescale, pf),
    rescaleFactor,
    doNormalize: bool(pre, "do_normalize", D.doNormalize, pf),
    imageMean: triple(pre.image_mean, pf, "image_mean", D.imageMean, false),
    imageStd: triple(pre.image_std, pf, "image_std", D.imageStd, true),
    doPad: bool(pre, "do_pad", D.doPad, pf),
    imageSeqLen: posInt(seq, cf, "image_seq_len"),
  };
}

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as Error).message})`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: invalid JSON (${(e as Error).message})`);
  }
  if (!isObj(v)) throw new Error(`${file}: expected a JSON object`);
  return v;
}

/**
 * Reads a model folder's preprocessor_config.json and processor_config.json
 * (optional; image_seq_len defaults to 169 without it). A folder without
 * preprocessor_config.json whose processor_config.json nests the settings
 * under "image_processor" (transformers 5) is read from there.
 */
export function readProcessorConfig(dir: string): Idefics3ImageProcessorConfig {
  const preFile = path.join(dir, "preprocessor_config.json");
  const procFile = path.join(dir, "processor_config.json");
  const proc = fs.existsSync(procFile) ? (readJson(procFile) as Idefics3ProcessorJson) : {};
  if (fs.existsSync(preFile)) return resolveImageProcessorConfig(readJson(preFile), proc, { preprocessor: preFile, processor: procFile });
  if (isObj(proc.image_processor)) {
    return resolveImageProcessorConfig(proc.image_processor, proc, { preprocessor: `${procFile} (image_processor)`, processor: procFile });
  }
  throw new Error(`${dir}: no preprocessor_config.json (the image processor's settings) in this model folder`);
}

/** Options of writeProcessorFiles. */
export interface WriteProcessorFilesOptions {
  /** max_image_size.longest_edge: the tile side, equal to the vision tower's image_size. */
  imageSize: number;
  /** image_seq_len: <image> tokens per tile ((image_size / patch_size)^2 / scale_factor^2). */
  imageSeqLen: number;
  /** do_image_splitting. */
  doImageSplitting: boolean;
  /** size.longest_edge; default 4 * imageSize (transformers' default ratio; SmolVLM uses 2048 for 512). */
  longestEdge?: number;
}

/** The preprocessor_config.json object writeProcessorFiles writes. */
export function preprocessorJsonFor(o: WriteProcessorFilesOptions): Idefics3PreprocessorJson {
  const where = "writeProcessorFiles";
  posInt(o.imageSize, where, "imageSize");
  posInt(o.imageSeqLen, where, "imageSeqLen");
  const longest = o.longestEdge ?? 4 * o.imageSize;
  posInt(longest, where, "longestEdge");
  if (typeof o.doImageSplitting !== "boolean") throw new Error(`${where}: doImageSplitting must be true or false, got ${show(o.doImageSplitting)}`);
  return {
    do_convert_rgb: true,
    do_image_splitting: o.doImageSplitting,
    do_normalize: true,
    do_pad: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_processor_type: "Idefics3ImageProcessor",
    image_std: [0.5, 0.5, 0.5],
    max_image_size: { longest_edge: o.imageSize },
    processor_class: "Idefics3Processor",
    resample: PIL_RESAMPLE.LANCZOS,
    rescale_factor: 1 / 255,
    size: { longest_edge: longest },
  };
}

/**
 * Writes preprocessor_config.json and processor_config.json into `dir` in
 * transformers' format (keys sorted, 2-space indent, as its to_json_string),
 * each file atomically; `dir` is created if needed.
 */
export async function writeProcessorFiles(dir: string, opts: WriteProcessorFilesOptions): Promise<void> {
  const pre = preprocessorJsonFor(opts);
  const proc: Idefics3ProcessorJson = { image_seq_len: opts.imageSeqLen, processor_class: "Idefics3Processor" };
  fs.mkdirSync(dir, { recursive: true });
  writeTextFileAtomic(path.join(dir, "preprocessor_config.json"), JSON.stringify(pre, null, 2) + "\n");
  writeTextFileAtomic(path.join(dir, "processor_config.json"), JSON.stringify(proc, null, 2) + "\n");
}
