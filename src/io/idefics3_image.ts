// The Idefics3 (SmolVLM) image path, following transformers'
// Idefics3ImageProcessor and Idefics3Processor:
//   decode (sharp) -> RGB (alpha composited on white, as convert_to_rgb) ->
//   resize so the longest edge is size.longest_edge (aspect kept, the short
//   side rounded to even) -> with do_image_splitting: resize both sides up to
//   multiples of max_image_size, cut rows x cols tiles of max_image_size and
//   add the whole image resized to max_image_size x max_image_size as the
//   global image -> rescale (1/255) -> normalize (mean/std), channels first.
// and the prompt expansion of each <image> marker into
//   <fake_token_around_image><row_r_col_c><image>*seq ... per tile, "\n" per
//   row, then "\n<fake_token_around_image><global-img><image>*seq<fake_token_around_image>"
// or, without tiles, <fake_token_around_image><global-img><image>*seq<fake_token_around_image>.
//
// Differences from transformers, on purpose: resizing uses sharp's lanczos3
// (PIL's LANCZOS differs by a few grey levels at edges); without splitting
// the image is resized to max_image_size x max_image_size (transformers keeps
// the aspect ratio there, which the model's square pixel shuffle cannot
// take); decoding refuses images above a pixel limit (decompression bombs).
import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { writeTextFileAtomic } from "./atomic.js";
import { type Tensor, tensor } from "../torch/index.js";

/** An RGB image, 8 bits per channel, rows of width*3 bytes. */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Refuse images with more pixels than this by default (about 8000 x 8000). */
export const DEFAULT_MAX_PIXELS = 64_000_000;

export interface DecodeOptions {
  /** Pixel limit (width * height); larger images are refused. Default DEFAULT_MAX_PIXELS. */
  maxPixels?: number;
  /** Name used in errors (default: the path, or "<bytes>"). */
  label?: string;
}

/**
 * Decodes JPEG, PNG, WebP, GIF (first frame), TIFF and AVIF into 8-bit RGB:
 * EXIF orientation applied, grayscale and CMYK converted, 16-bit reduced,
 * alpha composited onto white. Errors name the file.
 */
export async function decodeImage(source: string | Uint8Array, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const label = opts.label ?? (typeof source === "string" ? source : "<bytes>");
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (typeof source === "string" && !fs.existsSync(source)) throw new Error(`${label}: image file not found`);
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>["metadata"]>>;
  try {
    meta = await sharp(source, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new Error(`${label}: not a readable image (${(e as Error).message})`);
  }
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (w * h > maxPixels) throw new Error(`${label}: ${w}x${h} = ${w * h} pixels exceeds the limit of ${maxPixels} (a decompression bomb or a huge image; raise maxPixels to allow it)`);
  try {
    const { data, info } = await sharp(source, { limitInputPixels: maxPixels, pages: 1 })
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace("srgb")
      .removeAlpha()
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (e) {
    throw new Error(`${label}: cannot decode image (${(e as Error).message})`);
  }
}

// ---- config ------------------------------------------------------------------------

export interface Idefics3ImageProcessorConfig {
  doResize: boolean;
  /** size.longest_edge: the longest side after the first resize. */
  longestEdge: number;
  doImageSplitting: boolean;
  /** max_image_size.longest_edge: tile side = the vision tower's image_size. */
  imageSize: number;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  /** processor_config.json image_seq_len (tokens per tile). */
  imageSeqLen: number;
}

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: cannot read processor config (${(e as Error).message})`);
  }
}

function triple(v: unknown, file: string, key: string, dflt: [number, number, number]): [number, number, number] {
  if (v === undefined) return dflt;
  if (typeof v === "number") return [v, v, v];
  if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === "number")) return v as [number, number, number];
  throw new Error(`${file}: ${key} must be a number or a list of 3 numbers, got ${JSON.stringify(v)}`);
}

function sideOf(v: unknown, file: string, key: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = typeof v === "object" && v !== null ? (v as Record<string, unknown>).longest_edge : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) throw new Error(`${file}: ${key} must be {"longest_edge": positive integer}, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * Reads preprocessor_config.json (+ processor_config.json's image_seq_len)
 * of a model folder; absent fields take transformers' defaults
 * (size 4*364, max_image_size 364, splitting on, rescale 1/255, ImageNet-standard mean/std 0.5).
 */
export function readProcessorConfig(dir: string): Idefics3ImageProcessorConfig {
  const pre = path.join(dir, "preprocessor_config.json");
  if (!fs.existsSync(pre)) throw new Error(`${dir}: no preprocessor_config.json (the image processor's settings)`);
  const p = readJson(pre);
  const procFile = path.join(dir, "processor_config.json");
  const proc = fs.existsSync(procFile) ? readJson(procFile) : {};
  const seq = proc.image_seq_len ?? p.image_seq_len ?? 169;
  if (typeof seq !== "number" || !Number.isInteger(seq) || seq < 1) throw new Error(`${procFile}: image_seq_len must be a positive integer, got ${JSON.stringify(seq)}`);
  const bool = (k: string, d: boolean) => {
    const v = p[k];
    if (v === undefined) return d;
    if (typeof v !== "boolean") throw new Error(`${pre}: ${k} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const rf = p.rescale_factor ?? 1 / 255;
  if (typeof rf !== "number") throw new Error(`${pre}: rescale_factor must be a number`);
  return {
    doResize: bool("do_resize", true),
    longestEdge: sideOf(p.size, pre, "size", 4 * 364),
    doImageSplitting: bool("do_image_splitting", true),
    imageSize: sideOf(p.max_image_size, pre, "max_image_size", 364),
    doRescale: bool("do_rescale", true),
    rescaleFactor: rf,
    doNormalize: bool("do_normalize", true),
    imageMean: triple(p.image_mean, pre, "image_mean", [0.5, 0.5, 0.5]),
    imageStd: triple(p.image_std, pre, "image_std", [0.5, 0.5, 0.5]),
    imageSeqLen: seq,
  };
}

/** Writes preprocessor_config.json and processor_config.json in transformers' format. */
export async function writeProcessorFiles(dir: string, o: { imageSize: number; imageSeqLen: number; doImageSplitting: boolean; longestEdge?: number }): Promise<void> {
  const pre = {
    image_processor_type: "Idefics3ImageProcessor",
    processor_class: "Idefics3Processor",
    do_convert_rgb: true,
    do_resize: true,
    size: { longest_edge: o.longestEdge ?? (o.doImageSplitting ? 4 * o.imageSize : o.imageSize) },
    resample: 1,
    do_image_splitting: o.doImageSplitting,
    max_image_size: { longest_edge: o.imageSize },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
    do_pad: true,
  };
  writeTextFileAtomic(path.join(dir, "preprocessor_config.json"), JSON.stringify(pre, null, 2) + "\n");
  writeTextFileAtomic(path.join(dir, "processor_config.json"), JSON.stringify({ image_seq_len: o.imageSeqLen, processor_class: "Idefics3Processor" }, null, 2) + "\n");
}

// ---- geometry ------------------------------------------------------------------------

/** transformers' _resize_output_size_rescale_to_max_len: longest edge -> maxLen, the other side rounded up to even. */
export function longestEdgeSize(height: number, width: number, maxLen: number): { height: number; width: number } {
  const aspect = width / height;
  let h = height;
  let w = width;
  if (w >= h) {
    w = maxLen;
    h = Math.trunc(w / aspect);
    if (h % 2 !== 0) h += 1;
  } else {
    h = maxLen;
    w = Math.trunc(h * aspect);
    if (w % 2 !== 0) w += 1;
  }
  return { height: Math.max(h, 1), width: Math.max(w, 1) };
}

/** transformers' resize_for_vision_encoder: both sides up to multiples of `tile`, aspect kept first. */
export function visionEncoderSize(height: number, width: number, tile: number): { height: number; width: number } {
  const aspect = width / height;
  let h: number;
  let w: number;
  if (width >= height) {
    w = Math.ceil(width / tile) * tile;
    h = Math.ceil(Math.trunc(w / aspect) / tile) * tile;
  } else {
    h = Math.ceil(height / tile) * tile;
    w = Math.ceil(Math.trunc(h * aspect) / tile) * tile;
  }
  return { height: h, width: w };
}

async function resizeRgb(img: DecodedImage, width: number, height: number): Promise<DecodedImage> {
  if (img.width === width && img.height === height) return img;
  const buf = await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { fit: "fill", kernel: "lanczos3" })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), width, height };
}

function crop(img: DecodedImage, x0: number, y0: number, w: number, h: number): DecodedImage {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) out.set(img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x0 + w) * 3), y * w * 3);
  return { data: out, width: w, height: h };
}

/** One image as tiles (row-major) then the global image, with its grid (0 x 0 without tiles). */
export async function tileImage(img: DecodedImage, cfg: Idefics3ImageProcessorConfig): Promise<{ tiles: DecodedImage[]; rows: number; cols: number }> {
  const S = cfg.imageSize;
  let im = img;
  if (cfg.doResize) {
    const s = longestEdgeSize(im.height, im.width, cfg.longestEdge);
    im = await resizeRgb(im, s.width, s.height);
  }
  if (!cfg.doImageSplitting) return { tiles: [await resizeRgb(im, S, S)], rows: 0, cols: 0 };
  const v = visionEncoderSize(im.height, im.width, S);
  im = await resizeRgb(im, v.width, v.height);
  if (im.height <= S && im.width <= S) return { tiles: [await resizeRgb(im, S, S)], rows: 0, cols: 0 };
  const rows = Math.ceil(im.height / S);
  const cols = Math.ceil(im.width / S);
  const th = Math.ceil(im.height / rows);
  const tw = Math.ceil(im.width / cols);
  const tiles: DecodedImage[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const x0 = c * tw;
      const y0 = r * th;
      tiles.push(crop(im, x0, y0, Math.min(tw, im.width - x0), Math.min(th, im.height - y0)));
    }
  }
  tiles.push(await resizeRgb(im, S, S));
  return { tiles, rows, cols };
}

/** Tiles -> pixel values [N, 3, S, S] (rescaled, normalized), in order. */
export function pixelsOf(tiles: readonly DecodedImage[], cfg: Idefics3ImageProcessorConfig): Tensor {
  const S = cfg.imageSize;
  const out = new Float32Array(tiles.length * 3 * S * S);
  const scale = cfg.doRescale ? cfg.rescaleFactor : 1;
  tiles.forEach((t, n) => {
    if (t.width !== S || t.height !== S) throw new Error(`image tile ${n} is ${t.width}x${t.height}, expected ${S}x${S}`);
    for (let c = 0; c < 3; c++) {
      const mean = cfg.doNormalize ? cfg.imageMean[c] : 0;
      const std = cfg.doNormalize ? cfg.imageStd[c] : 1;
      const base = (n * 3 + c) * S * S;
      for (let i = 0; i < S * S; i++) out[base + i] = (t.data[i * 3 + c] * scale - mean) / std;
    }
  });
  return tensor(out, { shape: [tiles.length, 3, S, S] });
}

export interface ProcessedImages {
  /** [N, 3, S, S]: every tile of every image, each image's global image last. */
  pixelValues: Tensor;
  rows: number[];
  cols: number[];
}

/** Processes images as the Idefics3 image processor does. */
export async function processImages(images: readonly DecodedImage[], cfg: Idefics3ImageProcessorConfig): Promise<ProcessedImages> {
  const all: DecodedImage[] = [];
  const rows: number[] = [];
  const cols: number[] = [];
  for (const im of images) {
    const t = await tileImage(im, cfg);
    all.push(...t.tiles);
    rows.push(t.rows);
    cols.push(t.cols);
  }
  return { pixelValues: pixelsOf(all, cfg), rows, cols };
}

// ---- prompt --------------------------------------------------------------------------

export interface ImageTokenStrings {
  fakeImageToken: string;
  imageToken: string;
  globalImageToken: string;
}

export const IDEFICS3_IMAGE_TOKENS: ImageTokenStrings = { fakeImageToken: "<fake_token_around_image>", imageToken: "<image>", globalImageToken: "<global-img>" };

/** The text one image stands for, for a rows x cols grid (0 x 0: a single image). */
export function imagePromptString(rows: number, cols: number, seqLen: number, t: ImageTokenStrings = IDEFICS3_IMAGE_TOKENS): string {
  const block = t.imageToken.repeat(seqLen);
  const global = `${t.fakeImageToken}${t.globalImageToken}${block}${t.fakeImageToken}`;
  if (rows === 0 && cols === 0) return global;
  let s = "";
  for (let r = 1; r <= rows; r++) {
    for (let c = 1; c <= cols; c++) s += `${t.fakeImageToken}<row_${r}_col_${c}>${block}`;
    s += "\n";
  }
  return `${s}\n${global}`;
}

/** Replaces each <image> marker of `text` by its image's expansion. */
export function expandImageTokens(text: string, rows: readonly number[], cols: readonly number[], seqLen: number, t: ImageTokenStrings = IDEFICS3_IMAGE_TOKENS): string {
  const parts = text.split(t.imageToken);
  const markers = parts.length - 1;
  if (markers !== rows.length || rows.length !== cols.length) {
    throw new Error(`expandImageTokens: the text has ${markers} ${t.imageToken} marker(s) but ${rows.length} image(s) were given`);
  }
  let out = parts[0];
  for (let i = 0; i < markers; i++) out += imagePromptString(rows[i], cols[i], seqLen, t) + parts[i + 1];
  return out;
}
