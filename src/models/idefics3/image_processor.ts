// The Idefics3 (SmolVLM) image processor: decoded RGB images -> normalized
// tiles [N, 3, S, S], following transformers' Idefics3ImageProcessor
// (image_processing_idefics3.py, the PIL path) step by step:
//
//   1. do_resize: the longest edge to size.longest_edge, aspect kept, the
//      other side truncated and then rounded up to even; sides above 4096
//      scaled back under it (MAX_IMAGE_SIZE). Small images are enlarged.
//   2. do_image_splitting: resize_for_vision_encoder, both sides up to
//      multiples of S = max_image_size.longest_edge (the short side derived
//      from the long one's new length and the aspect ratio, then rounded up);
//      if the result is larger than S x S, cut it into rows x cols tiles of
//      S x S (row-major) and append the whole image resized to S x S (the
//      "global image"); otherwise the S x S image alone, rows = cols = 0.
//      Without splitting: the image resized to S x S, rows = cols = 0.
//   3. do_rescale (x rescale_factor, in float64 then cast to float32, as
//      transformers' rescale) and do_normalize ((x - mean) / std in float32).
//
// Every tile is S x S whatever the settings, so do_pad's padding to the
// largest tile never pads anything: the pixel attention mask is all true
// (transformers pads only the number of images per sample, with all-zero
// images that the model drops; here the tiles of all images are simply
// concatenated, N = sum over images of rows * cols + 1).
//
// Resizing is Pillow-exact by default (see image_resample.ts); "sharp" is the
// faster libvips path with small differences. Each resize reads the previous
// step's 8-bit result, as transformers' chain of PIL resizes does.
//
// Where transformers' versions differ, this follows the current ones (4.5x
// slow processor, 5.x PIL backend):
// - without splitting the image is squared to S x S (4.4x kept the aspect);
// - the configured resample is used for the global image too (4.4x's
//   split_image fell back to LANCZOS there; the same for every real config);
// - images arrive as RGB (image_decode.ts): 4.5x's slow processor resized a
//   single-channel array as a PIL "P" image, i.e. with NEAREST, before its
//   RGB conversion; 5.x converts first, as here;
// - with do_rescale and do_normalize both off the values are float32 0..255
//   (transformers would hand back uint8).
import { tensor, type Tensor } from "../../torch/index.js";
import { checkDecodedImage, type DecodedImage } from "../../io/image_decode.js";
import type { Idefics3ImageProcessorConfig } from "./image_processor_config.js";
import { type ResizeBackend, resizeRgb } from "../../io/image_resample.js";

/** transformers' MAX_IMAGE_SIZE: no side exceeds this after the first resize. */
export const IDEFICS3_MAX_IMAGE_SIZE = 4096;

export interface Size2D {
  height: number;
  width: number;
}

/** transformers' _resize_output_size_rescale_to_max_len: the longest edge to maxLen, the other side truncated then rounded up to even. */
export function rescaleToMaxLen(height: number, width: number, maxLen: number, minLen = 1): Size2D {
  const aspect = width / height;
  let h = height;
  let w = width;
  if (width >= height) {
    w = maxLen;
    h = Math.trunc(w / aspect);
    if (h % 2 !== 0) h += 1;
  } else {
    h = maxLen;
    w = Math.trunc(h * aspect);
    if (w % 2 !== 0) w += 1;
  }
  return { height: Math.max(h, minLen), width: Math.max(w, minLen) };
}

/** transformers' _resize_output_size_scale_below_upper_bound: a side above maxLen brought down to it, aspect kept. */
export function scaleBelowUpperBound(height: number, width: number, maxLen: number): Size2D {
  const aspect = width / height;
  let h = height;
  let w = width;
  if (width >= height && width > maxLen) {
    w = maxLen;
    h = Math.trunc(w / aspect);
  } else if (height > width && height > maxLen) {
    h = maxLen;
    w = Math.trunc(h * aspect);
  }
  return { height: Math.max(h, 1), width: Math.max(w, 1) };
}

/** The size after do_resize with size.longest_edge (transformers' get_resize_output_image_size). */
export function longestEdgeSize(height: number, width: number, longestEdge: number): Size2D {
  const s = rescaleToMaxLen(height, width, longestEdge);
  return scaleBelowUpperBound(s.height, s.width, IDEFICS3_MAX_IMAGE_SIZE);
}

/**
 * transformers' resize_for_vision_encoder: both sides up to multiples of `tile`.
 * (A derived short side of 0, possible for a 1-pixel-thin image through float
 * rounding, is raised to one tile; transformers would fail there.)
 */
export function visionEncoderSize(height: number, width: number, tile: number): Size2D {
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
  return { height: Math.max(h, tile), width: Math.max(w, tile) };
}

/** The geometry of one image: the sizes it goes through and its tile grid. */
export interface TilePlan {
  /** Size after do_resize (the input size when do_resize is off). */
  resized: Size2D;
  /** Size after resize_for_vision_encoder (splitting on), else S x S. */
  encoderSize: Size2D;
  /** Tile rows and columns; 0 and 0 when the image is a single S x S image. */
  rows: number;
  cols: number;
  /** Tiles this image contributes: rows * cols + 1 (the global image), or 1. */
  numTiles: number;
}

/** Where an image of height x width ends up under `cfg` (no pixels touched). */
export function planTiles(height: number, width: number, cfg: Idefics3ImageProcessorConfig): TilePlan {
  const S = cfg.maxImageSize;
  let resized: Size2D = { height, width };
  if (cfg.doResize) {
    resized = "longestEdge" in cfg.size ? longestEdgeSize(height, width, cfg.size.longestEdge) : { height: cfg.size.height, width: cfg.size.width };
  }
  if (!cfg.doImageSplitting) return { resized, encoderSize: { height: S, width: S }, rows: 0, cols: 0, numTiles: 1 };
  const encoderSize = visionEncoderSize(resized.height, resized.width, S);
  if (encoderSize.height > S || encoderSize.width > S) {
    const rows = Math.ceil(encoderSize.height / S);
    const cols = Math.ceil(encoderSize.width / S);
    return { resized, encoderSize, rows, cols, numTiles: rows * cols + 1 };
  }
  return { resized, encoderSize, rows: 0, cols: 0, numTiles: 1 };
}

/** An image as 8-bit S x S tiles in model order (row-major tiles, then the global image), with its grid. */
export interface ImageTiles {
  tiles: DecodedImage[];
  rows: number;
  cols: number;
}

/** Options of the pixel steps. */
export interface ProcessImagesOptions {
  /** Resizing implementation: "pil" (Pillow-exact, default) or "sharp" (libvips, faster, a few levels off). */
  backend?: ResizeBackend;
  /** Also return pixelAttentionMask [N, S, S] (all true: tiles are never padded). Default false. */
  returnPixelAttentionMask?: boolean;
}

function crop(img: DecodedImage, x0: number, y0: number, w: number, h: number): DecodedImage {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const s = ((y0 + y) * img.width + x0) * 3;
    out.set(img.data.subarray(s, s + w * 3), y * w * 3);
  }
  return { data: out, width: w, height: h };
}

/** Steps 1-2 for one image: its 8-bit tiles. */
export async function tileImage(img: DecodedImage, cfg: Idefics3ImageProcessorConfig, opts: ProcessImagesOptions = {}): Promise<ImageTiles> {
  checkDecodedImage(img, "tileImage");
  const backend = opts.backend ?? "pil";
  const S = cfg.maxImageSize;
  const plan = planTiles(img.height, img.width, cfg);
  let im = img;
  if (cfg.doResize) im = await resizeRgb(im, plan.resized.width, plan.resized.height, cfg.resample, backend);
  if (!cfg.doImageSplitting) return { tiles: [await resizeRgb(im, S, S, cfg.resample, backend)], rows: 0, cols: 0 };
  im = await resizeRgb(im, plan.encoderSize.width, plan.encoderSize.height, cfg.resample, backend);
  if (plan.rows === 0) return { tiles: [im], rows: 0, cols: 0 };
  const tiles: DecodedImage[] = [];
  for (let r = 0; r < plan.rows; r++) for (let c = 0; c < plan.cols; c++) tiles.push(crop(im, c * S, r * S, S, S));
  tiles.push(await resizeRgb(im, S, S, cfg.resample, backend));
  return { tiles, rows: plan.rows, cols: plan.cols };
}

/**
 * The float value of each byte per channel after rescale and normalize, with
 * transformers' float semantics: rescale in float64 then float32; normalize
 * in float32.
 */
export function normalizationTable(cfg: Idefics3ImageProcessorConfig): Float32Array[] {
  const f = Math.fround;
  return [0, 1, 2].map((c) => {
    const lut = new Float32Array(256);
    const mean = f(cfg.imageMean[c]);
    const std = f(cfg.imageStd[c]);
    for (let v = 0; v < 256; v++) {
      let x = cfg.doRescale ? f(v * cfg.rescaleFactor) : v;
      if (cfg.doNormalize) x = f(f(x - mean) / std);
      lut[v] = x;
    }
    return lut;
  });
}

/** Step 3: 8-bit S x S tiles -> float32 [N, 3, S, S] (channels first). */
export function tilesToPixelValues(tiles: readonly DecodedImage[], cfg: Idefics3ImageProcessorConfig): Tensor {
  const S = cfg.maxImageSize;
  const plane = S * S;
  const out = new Float32Array(tiles.length * 3 * plane);
  const lut = normalizationTable(cfg);
  tiles.forEach((t, n) => {
    if (t.width !== S || t.height !== S || t.data.length !== plane * 3) {
      throw new Error(`tilesToPixelValues: tile ${n} is ${t.width}x${t.height}, expected ${S}x${S} (max_image_size)`);
    }
    for (let c = 0; c < 3; c++) {
      const l = lut[c];
      const base = (n * 3 + c) * plane;
      for (let i = 0; i < plane; i++) out[base + i] = l[t.data[i * 3 + c]];
    }
  });
  return tensor(out, { shape: [tiles.length, 3, S, S] });
}

/** What processImages returns. */
export interface ProcessedImages {
  /** float32 [N, 3, S, S]: each image's tiles (row-major) then its global image, image after image. */
  pixelValues: Tensor;
  /** bool [N, S, S], all true; only with returnPixelAttentionMask. */
  pixelAttentionMask?: Tensor;
  /** Tile rows per image (0 for a single-image image). */
  rows: number[];
  /** Tile columns per image. */
  cols: number[];
  /** Tiles per image (rows * cols + 1, or 1); they sum to N. */
  tilesPerImage: number[];
}

/** Processes images as transformers' Idefics3ImageProcessor does (see the file header). */
export async function processImages(images: readonly DecodedImage[], cfg: Idefics3ImageProcessorConfig, opts: ProcessImagesOptions = {}): Promise<ProcessedImages> {
  if (images.length === 0) throw new Error("processImages: no images given");
  const all: DecodedImage[] = [];
  const rows: number[] = [];
  const cols: number[] = [];
  const tilesPerImage: number[] = [];
  for (let i = 0; i < images.length; i++) {
    checkDecodedImage(images[i], `processImages: image ${i}`);
    const t = await tileImage(images[i], cfg, opts);
    all.push(...t.tiles);
    rows.push(t.rows);
    cols.push(t.cols);
    tilesPerImage.push(t.tiles.length);
  }
  const pixelValues = tilesToPixelValues(all, cfg);
  const S = cfg.maxImageSize;
  const out: ProcessedImages = { pixelValues, rows, cols, tilesPerImage };
  if (opts.returnPixelAttentionMask) out.pixelAttentionMask = tensor(new Uint8Array(all.length * S * S).fill(1), { shape: [all.length, S, S], dtype: "bool" });
  return out;
}
