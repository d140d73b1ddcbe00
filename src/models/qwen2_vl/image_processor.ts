// The Qwen2-VL image processor (transformers' Qwen2VLImageProcessor, PIL
// backend; Qwen2.5-VL uses the same class), step by step:
//
//   1. do_resize: smart_resize to (h', w') with both sides multiples of
//      factor = patch_size * merge_size (28), h' * w' within
//      [min_pixels, max_pixels] and the aspect ratio kept as well as it can be
//      (aspect above 200 is an error); resampled with PIL (bicubic by default)
//      on the 8-bit image, Pillow-exact by default (src/io/image_resample.ts);
//   2. do_rescale (x rescale_factor in float64, then float32) and
//      do_normalize ((x - mean) / std in float32), OpenAI CLIP's mean and std;
//   3. patchify: the (C, h', w') image cut into patch_size patches, ordered
//      per merge_size x merge_size block (row-major blocks, row-major inside),
//      each patch repeated temporal_patch_size times (a still image is a clip
//      of identical frames) and flattened as (C, T, P, P): one row of
//      pixel_values [h'/P * w'/P, C*T*P*P]; image_grid_thw [1, h'/P, w'/P].
//
// Config files: preprocessor_config.json (the hub's), or the "image_processor"
// entry of processor_config.json (what transformers 5.18's processor
// save_pretrained writes). min_pixels / max_pixels fields override
// size.shortest_edge / size.longest_edge, as the transformers class does.
import fs from "node:fs";
import path from "node:path";

import { checkDecodedImage, type DecodedImage } from "../../io/image_decode.js";
import { PIL_RESAMPLE, type PilResample, type ResizeBackend, resizeRgb } from "../../io/image_resample.js";
import { type Tensor, tensor } from "../../torch/index.js";
import { FieldReader, isObject, type RawConfig } from "./fields.js";

/** OpenAI CLIP's normalization (transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD). */
export const CLIP_MEAN: readonly number[] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: readonly number[] = [0.26862954, 0.26130258, 0.27577711];

export interface QwenImageProcessorConfig {
  /** Default true. */
  doResize: boolean;
  /** PIL filter (default 3, BICUBIC). */
  resample: PilResample;
  /** size.shortest_edge: least pixels after resizing (default 56 * 56). */
  minPixels: number;
  /** size.longest_edge: most pixels after resizing (default 28 * 28 * 1280). */
  maxPixels: number;
  doRescale: boolean;
  /** Default 1 / 255. */
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  /** Default 14. */
  patchSize: number;
  /** Default 2. */
  temporalPatchSize: number;
  /** Default 2. */
  mergeSize: number;
}

export const QWEN_IMAGE_PROCESSOR_DEFAULTS: Readonly<QwenImageProcessorConfig> = Object.freeze({
  doResize: true,
  resample: PIL_RESAMPLE.BICUBIC,
  minPixels: 56 * 56,
  maxPixels: 28 * 28 * 1280,
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  imageMean: [...CLIP_MEAN] as [number, number, number],
  imageStd: [...CLIP_STD] as [number, number, number],
  patchSize: 14,
  temporalPatchSize: 2,
  mergeSize: 2,
});

function triple(r: FieldReader, key: string, def: readonly number[]): [number, number, number] {
  const v = r.raw[key] ?? def;
  const arr = typeof v === "number" ? [v, v, v] : v;
  if (!Array.isArray(arr) || arr.length !== 3 || !arr.every((x) => typeof x === "number" && Number.isFinite(x))) {
    throw new Error(`${r.where}: field "${key}" must be a number or three numbers, got ${JSON.stringify(v)}`);
  }
  return arr as [number, number, number];
}

/** Resolves an image processor dict (preprocessor_config.json's content) against the defaults. */
export function resolveQwenImageProcessorConfig(raw: RawConfig, where = "preprocessor_config.json"): QwenImageProcessorConfig {
  const r = new FieldReader(raw, where);
  const d = QWEN_IMAGE_PROCESSOR_DEFAULTS;
  const size = r.obj("size") ?? {};
  const sr = new FieldReader(size, `${where}: size`);
  // size.{shortest,longest}_edge (transformers 5) or size.{min,max}_pixels (older files); top-level fields win.
  let minPixels = sr.int(sr.first("shortest_edge", "min_pixels") ?? "shortest_edge", d.minPixels);
  let maxPixels = sr.int(sr.first("longest_edge", "max_pixels") ?? "longest_edge", d.maxPixels);
  if (r.has("min_pixels")) minPixels = r.int("min_pixels", minPixels);
  if (r.has("max_pixels")) maxPixels = r.int("max_pixels", maxPixels);
  if (minPixels > maxPixels) throw new Error(`${where}: min_pixels ${minPixels} is above max_pixels ${maxPixels}`);
  const resample = r.int("resample", d.resample, 0);
  if (resample > 5) throw new Error(`${where}: field "resample" must be a PIL filter 0..5, got ${resample}`);
  const std = triple(r, "image_std", d.imageStd);
  if (std.some((s) => s === 0)) throw new Error(`${where}: image_std must not contain 0`);
  for (const k of ["patch_size", "temporal_patch_size", "merge_size"]) if (Array.isArray(raw[k])) throw new Error(`${where}: field "${k}" must be one integer`);
  return {
    doResize: r.bool("do_resize", d.doResize),
    resample: resample as PilResample,
    minPixels,
    maxPixels,
    doRescale: r.bool("do_rescale", d.doRescale),
    rescaleFactor: r.num("rescale_factor", d.rescaleFactor),
    doNormalize: r.bool("do_normalize", d.doNormalize),
    imageMean: triple(r, "image_mean", d.imageMean),
    imageStd: std,
    patchSize: r.int("patch_size", d.patchSize),
    temporalPatchSize: r.int("temporal_patch_size", d.temporalPatchSize),
    mergeSize: r.int("merge_size", d.mergeSize),
  };
}

function readJson(file: string): RawConfig {
  let v: unknown;
  try {
    v = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(v)) throw new Error(`${file}: expected a JSON object`);
  return v;
}

/** The image processor config of a model folder: preprocessor_config.json, else processor_config.json's "image_processor". */
export function readQwenImageProcessorConfig(dir: string): QwenImageProcessorConfig {
  const pre = path.join(dir, "preprocessor_config.json");
  if (fs.existsSync(pre)) return resolveQwenImageProcessorConfig(readJson(pre), pre);
  const proc = path.join(dir, "processor_config.json");
  if (fs.existsSync(proc)) {
    const ip = readJson(proc).image_processor;
    if (!isObject(ip)) throw new Error(`${proc}: no "image_processor" object (and no preprocessor_config.json in ${dir})`);
    return resolveQwenImageProcessorConfig(ip, `${proc}: image_processor`);
  }
  throw new Error(`${dir}: no preprocessor_config.json or processor_config.json (the Qwen2-VL image processor settings)`);
}

/** preprocessor_config.json for a config, in the hub's layout (keys sorted). */
export function qwenPreprocessorJson(c: QwenImageProcessorConfig, processorClass = "Qwen2VLProcessor"): RawConfig {
  return {
    do_convert_rgb: true,
    do_normalize: c.doNormalize,
    do_rescale: c.doRescale,
    do_resize: c.doResize,
    image_mean: [...c.imageMean],
    image_processor_type: "Qwen2VLImageProcessor",
    image_std: [...c.imageStd],
    max_pixels: c.maxPixels,
    merge_size: c.mergeSize,
    min_pixels: c.minPixels,
    patch_size: c.patchSize,
    processor_class: processorClass,
    resample: c.resample,
    rescale_factor: c.rescaleFactor,
    size: { longest_edge: c.maxPixels, shortest_edge: c.minPixels },
    temporal_patch_size: c.temporalPatchSize,
  };
}

/** Python's round(): halves to even (round(2.5) == 2). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** transformers' smart_resize: the (height, width) an image is resized to. */
export function smartResize(height: number, width: number, factor = 28, minPixels = 56 * 56, maxPixels = 28 * 28 * 1280): { height: number; width: number } {
  if (!(height >= 1 && width >= 1)) throw new Error(`smart_resize: image size must be positive, got ${height}x${width}`);
  const aspect = Math.max(height, width) / Math.min(height, width);
  if (aspect > 200) throw new Error(`smart_resize: absolute aspect ratio must be smaller than 200, got ${aspect} (${width}x${height})`);
  let h = roundHalfEven(height / factor) * factor;
  let w = roundHalfEven(width / factor) * factor;
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.max(factor, Math.floor(height / beta / factor) * factor);
    w = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return { height: h, width: w };
}

/** The value of each byte per channel after rescale and normalize, with transformers' float semantics. */
export function qwenNormalizationTable(c: QwenImageProcessorConfig): Float32Array[] {
  const f = Math.fround;
  return [0, 1, 2].map((ch) => {
    const lut = new Float32Array(256);
    const mean = f(c.imageMean[ch]);
    const std = f(c.imageStd[ch]);
    for (let v = 0; v < 256; v++) {
      let x = c.doRescale ? f(v * c.rescaleFactor) : v;
      if (c.doNormalize) x = f(f(x - mean) / std);
      lut[v] = x;
    }
    return lut;
  });
}

/** Where an image of height x width ends up: the resized size and the patch grid [t, h, w]. */
export function planImage(height: number, width: number, c: QwenImageProcessorConfig): { height: number; width: number; grid: [number, number, number] } {
  const factor = c.patchSize * c.mergeSize;
  const size = c.doResize ? smartResize(height, width, factor, c.minPixels, c.maxPixels) : { height, width };
  if (size.height % factor !== 0 || size.width % factor !== 0) {
    throw new Error(`Qwen2-VL image processor: with do_resize off, images must have sides that are multiples of patch_size * merge_size = ${factor}, got ${width}x${height}`);
  }
  return { ...size, grid: [1, size.height / c.patchSize, size.width / c.patchSize] };
}

/** Steps 2-3 for one resized 8-bit image: its pixel_values rows (Float32Array [gh*gw * C*T*P*P]). */
export function patchify(img: DecodedImage, c: QwenImageProcessorConfig, lut: Float32Array[] = qwenNormalizationTable(c)): Float32Array {
  const P = c.patchSize;
  const m = c.mergeSize;
  const T = c.temporalPatchSize;
  const gh = img.height / P;
  const gw = img.width / P;
  const plane = P * P;
  const rowLen = 3 * T * plane;
  const out = new Float32Array(gh * gw * rowLen);
  let row = 0;
  for (let bh = 0; bh < gh / m; bh++) {
    for (let bw = 0; bw < gw / m; bw++) {
      for (let mh = 0; mh < m; mh++) {
        for (let mw = 0; mw < m; mw++) {
          const y0 = (bh * m + mh) * P;
          const x0 = (bw * m + mw) * P;
          const base = row * rowLen;
          for (let ch = 0; ch < 3; ch++) {
            const l = lut[ch];
            const cBase = base + ch * T * plane;
            for (let py = 0; py < P; py++) {
              for (let px = 0; px < P; px++) {
                const v = l[img.data[((y0 + py) * img.width + x0 + px) * 3 + ch]];
                for (let t = 0; t < T; t++) out[cBase + t * plane + py * P + px] = v;
              }
            }
          }
          row++;
        }
      }
    }
  }
  return out;
}

export interface QwenProcessedImages {
  /** float32 [sum of h*w patches, C*T*P*P]: every image's patches, image after image. */
  pixelValues: Tensor;
  /** [t, h, w] patch grid per image (t = 1 for images). */
  imageGridThw: [number, number, number][];
  /** Image tokens each image expands to: t*h*w / merge^2. */
  numImageTokens: number[];
}

/** Processes decoded RGB images as transformers' Qwen2VLImageProcessor does (see the file header). */
export async function processQwenImages(images: readonly DecodedImage[], c: QwenImageProcessorConfig, opts: { backend?: ResizeBackend } = {}): Promise<QwenProcessedImages> {
  if (images.length === 0) throw new Error("processQwenImages: no images given");
  const backend = opts.backend ?? "pil";
  const lut = qwenNormalizationTable(c);
  const rows: Float32Array[] = [];
  const grids: [number, number, number][] = [];
  for (let i = 0; i < images.length; i++) {
    const img = images[i];
    checkDecodedImage(img, `processQwenImages: image ${i}`);
    const plan = planImage(img.height, img.width, c);
    const resized = plan.height === img.height && plan.width === img.width ? img : await resizeRgb(img, plan.width, plan.height, c.resample, backend);
    rows.push(patchify(resized, c, lut));
    grids.push(plan.grid);
  }
  const rowLen = 3 * c.temporalPatchSize * c.patchSize * c.patchSize;
  const total = rows.reduce((a, r) => a + r.length, 0);
  const all = new Float32Array(total);
  let off = 0;
  for (const r of rows) {
    all.set(r, off);
    off += r.length;
  }
  const m2 = c.mergeSize * c.mergeSize;
  return {
    pixelValues: tensor(all, { shape: [total / rowLen, rowLen] }),
    imageGridThw: grids,
    numImageTokens: grids.map((g) => (g[0] * g[1] * g[2]) / m2),
  };
}
