// Image files -> 8-bit RGB pixels, with sharp (libvips).
//
// What comes out is what transformers' Idefics3 image processor works on
// after its convert_to_rgb step, with these choices made explicit:
// - EXIF orientation is applied (as transformers' load_image does through
//   ImageOps.exif_transpose; an image handed to the processor as a PIL image
//   straight from a file or a `datasets` column is not rotated there).
// - Alpha is dropped: RGBA, grey + alpha and palette images with a
//   transparent entry keep their colour channels as stored, as Pillow's
//   convert("RGB") does. That is what transformers 5.x does (load_image and
//   the image processors' convert_to_rgb both call convert("RGB"); checked
//   against transformers 5.18 by test/peers/processor.test.ts). transformers
//   4.x composited such images onto white; so did this module before 5.x was
//   pinned. A transparent pixel therefore shows its stored colour, often black.
// - Grayscale becomes three equal channels.
// - CMYK and 16-bit grayscale follow Pillow's convert("RGB") (what
//   transformers' load_image calls; checked against Pillow 12.3 by
//   test/peers/processor.test.ts): CMYK by Pillow's formula without colour
//   management, R = (255 - K) - C * (255 - K) / 255 (integer rounding as its
//   MULDIV255), not through an ICC profile; 16-bit grayscale (Pillow's "I;16")
//   is clipped at 255, so such an image comes out nearly white in transformers
//   and here alike; 16-bit colour keeps the high byte of each sample.
// - GIF, WebP and TIFF: the first frame / page only.
// - Images larger than a pixel limit are refused from their header, before
//   any pixel is decoded (decompression bombs).
import fs from "node:fs";
import sharp, { type Metadata, type OutputInfo } from "sharp";
import { runWithOwnErrors, vipsReason } from "./vips_errors.js";

/** An RGB image, 8 bits per channel, row-major, channels last (HWC): `data.length === width * height * 3`. */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Default pixel limit (width * height): 64 megapixels, e.g. 8000 x 8000. */
export const DEFAULT_MAX_PIXELS = 64_000_000;

/** Container formats decodeImage accepts (sharp's names). SVG, PDF and others are refused. */
export const SUPPORTED_IMAGE_FORMATS: readonly string[] = ["jpeg", "png", "webp", "gif", "tiff", "heif"];

export interface DecodeImageOptions {
  /** Refuse images with more pixels than this (width * height of the first frame). Default DEFAULT_MAX_PIXELS. */
  maxPixels?: number;
  /** Name used in error messages. Default: the path, or "<image bytes>" for a buffer. */
  label?: string;
}

/** RGBA -> RGB by dropping alpha (Pillow's convert("RGB") of an "RGBA" or "LA" image). */
export function dropAlpha(rgba: Uint8Array, width: number, height: number): Uint8Array {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    out[i * 3] = rgba[i * 4];
    out[i * 3 + 1] = rgba[i * 4 + 1];
    out[i * 3 + 2] = rgba[i * 4 + 2];
  }
  return out;
}

/**
 * CMYK (0 = no ink) -> RGB as Pillow's convert("RGB") (Convert.c cmyk2rgb):
 * each of R, G, B is (255 - K) - MULDIV255(C|M|Y, 255 - K), no colour management.
 */
export function cmykToRgbLikePillow(cmyk: Uint8Array): Uint8Array {
  const n = cmyk.length / 4;
  const out = new Uint8Array(n * 3);
  const mulDiv255 = (a: number, b: number) => {
    const t = a * b + 128;
    return ((t >>> 8) + t) >>> 8;
  };
  for (let i = 0; i < n; i++) {
    const nk = 255 - cmyk[i * 4 + 3];
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.max(0, nk - mulDiv255(cmyk[i * 4 + c], nk));
  }
  return out;
}

/** 16-bit grayscale -> RGB as Pillow's convert("RGB") of an "I;16" image: samples clipped at 255. */
export function grey16ToRgbLikePillow(grey: Uint16Array): Uint8Array {
  const out = new Uint8Array(grey.length * 3);
  for (let i = 0; i < grey.length; i++) out.fill(Math.min(grey[i], 255), i * 3, i * 3 + 3);
  return out;
}

function describe(source: string | Uint8Array, label?: string): string {
  if (label !== undefined) return label;
  return typeof source === "string" ? source : "<image bytes>";
}

/**
 * Decodes an image file (path) or its bytes into 8-bit RGB (see the file
 * header for the conversions). Errors name the file: not found, unreadable or
 * unsupported format, too many pixels (with the limit), decode failure.
 */
export async function decodeImage(source: string | Uint8Array, opts: DecodeImageOptions = {}): Promise<DecodedImage> {
  const label = describe(source, opts.label);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(maxPixels > 0)) throw new Error(`${label}: maxPixels must be a positive number, got ${maxPixels}`);
  let input: string | Buffer;
  if (typeof source === "string") {
    let st: fs.Stats;
    try {
      st = fs.statSync(source);
    } catch {
      throw new Error(`${label}: image file not found`);
    }
    if (!st.isFile()) throw new Error(`${label}: not a file`);
    input = source;
  } else if (source instanceof Uint8Array) {
    if (source.byteLength === 0) throw new Error(`${label}: empty image data (0 bytes)`);
    input = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  } else {
    throw new Error(`${label}: expected a file path or a Uint8Array, got ${typeof source}`);
  }

  // Header only: format and size, before any pixel is decoded.
  let meta: Metadata;
  try {
    meta = await runWithOwnErrors(() => sharp(input, { limitInputPixels: false }).metadata());
  } catch (e) {
    throw new Error(`${label}: not a readable image (unknown format, or a corrupt or truncated file): ${vipsReason(e)}`);
  }
  const format = meta.format as string | undefined;
  if (!format || !SUPPORTED_IMAGE_FORMATS.includes(format)) {
    throw new Error(`${label}: unsupported image format '${format ?? "unknown"}' (supported: ${SUPPORTED_IMAGE_FORMATS.join(", ")})`);
  }
  const w = meta.width ?? 0;
  const h = meta.pageHeight ?? meta.height ?? 0;
  if (w < 1 || h < 1) throw new Error(`${label}: the ${format} header gives no size (${w}x${h})`);
  if (w * h > maxPixels) {
    throw new Error(`${label}: ${w}x${h} = ${w * h} pixels exceeds the limit of ${maxPixels} pixels (maxPixels; a decompression bomb or a very large image)`);
  }

  let data: Buffer;
  let info: OutputInfo;
  // The colour spaces Pillow converts without colour management: keep them
  // as stored (no ICC transform) and convert below as Pillow does.
  const pillowSpace = meta.space === "cmyk" || (meta.space === "grey16" && meta.channels === 1) ? meta.space : null;
  try {
    ({ data, info } = await runWithOwnErrors(() => {
      const img = sharp(input, { limitInputPixels: Number.isFinite(maxPixels) ? Math.ceil(maxPixels) : false, pages: 1, page: 0, failOn: "error" }).autoOrient(); // EXIF orientation
      return (pillowSpace
        ? img.pipelineColourspace(pillowSpace).toColourspace(pillowSpace).raw({ depth: pillowSpace === "grey16" ? "ushort" : "uchar" })
        : img.toColourspace("srgb").raw({ depth: "uchar" }) // grayscale -> 3 channels, 16-bit colour -> 8-bit
      ).toBuffer({ resolveWithObject: true });
    }));
  } catch (e) {
    throw new Error(`${label}: cannot decode ${format} image (${vipsReason(e)})`);
  }
  if (pillowSpace === "cmyk") {
    if (info.channels !== 4) throw new Error(`${label}: CMYK image decoded to ${info.channels} channels, expected 4`);
    return { data: cmykToRgbLikePillow(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)), width: info.width, height: info.height };
  }
  if (pillowSpace === "grey16") {
    return { data: grey16ToRgbLikePillow(new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2)), width: info.width, height: info.height };
  }
  const px = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (info.channels === 3) return { data: px, width: info.width, height: info.height };
  if (info.channels === 4) return { data: dropAlpha(px, info.width, info.height), width: info.width, height: info.height };
  throw new Error(`${label}: decoded to ${info.channels} channels, expected 3 (RGB) or 4 (RGBA)`);
}

/** Checks that `img` is a well-formed DecodedImage; `what` names it in the error. */
export function checkDecodedImage(img: DecodedImage, what: string): void {
  if (!img || !(img.data instanceof Uint8Array)) throw new Error(`${what}: expected {data: Uint8Array, width, height}`);
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width < 1 || img.height < 1) {
    throw new Error(`${what}: width and height must be positive integers, got ${img.width}x${img.height}`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new Error(`${what}: data has ${img.data.length} bytes, expected ${img.width}x${img.height}x3 = ${img.width * img.height * 3} (RGB)`);
  }
}
