// Resizing of 8-bit RGB images, two ways:
//   "pil":   a re-implementation of Pillow's Image.resize for 8-bit images
//            (libImaging/Resample.c: separable convolution, horizontal pass
//            then vertical, coefficients in 22-bit fixed point, each pass
//            rounded and clamped to 0..255; NEAREST through the affine
//            scaler). Transformers' Idefics3 image processor resizes with
//            PIL, so this path reproduces its pixels exactly (checked
//            against Pillow 9.4 in test/io/image_resample.test.ts).
//   "sharp": libvips through sharp (lanczos3 / cubic / linear / nearest).
//            Several times faster on large images; differs from PIL by a
//            few grey levels near edges (libvips' kernels are applied with
//            other rounding, and large reductions go through a box
//            pre-shrink).
import sharp, { type KernelEnum } from "sharp";
import type { DecodedImage } from "./image_decode.js";

/** Pillow's resampling filters, by the integer that preprocessor_config.json's "resample" holds. */
export const PIL_RESAMPLE = { NEAREST: 0, LANCZOS: 1, BILINEAR: 2, BICUBIC: 3, BOX: 4, HAMMING: 5 } as const;
export type PilResample = (typeof PIL_RESAMPLE)[keyof typeof PIL_RESAMPLE];
/** Which implementation resizes: Pillow-exact JS ("pil") or libvips ("sharp"). */
export type ResizeBackend = "pil" | "sharp";

export const PIL_RESAMPLE_NAMES: Record<PilResample, string> = { 0: "NEAREST", 1: "LANCZOS", 2: "BILINEAR", 3: "BICUBIC", 4: "BOX", 5: "HAMMING" };

interface Filter {
  support: number;
  fn: (x: number) => number;
}

const sinc = (x: number): number => {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
};

// The filters of Resample.c, written as Pillow writes them (including the
// single-precision constants of the Hamming window).
const FILTERS: Record<Exclude<PilResample, 0>, Filter> = {
  1: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
  2: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      return a < 1 ? 1 - a : 0;
    },
  },
  3: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  4: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  5: {
    support: 1,
    fn: (x) => {
      const t = Math.abs(x);
      if (t === 0) return 1;
      if (t >= 1) return 0;
      const px = t * Math.PI;
      return (Math.sin(px) / px) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(px));
    },
  },
};

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

interface Coeffs {
  /** Taps per output sample (the stride of `k`). */
  ksize: number;
  /** First input index and number of taps, per output sample. */
  start: Int32Array;
  count: Int32Array;
  /** Fixed-point weights, ksize per output sample. */
  k: Int32Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for resizing inSize samples to outSize. */
function coefficients(inSize: number, outSize: number, filter: Filter): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = filter.fn((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      // (int)(v * 2^22 +- 0.5): rounding half away from zero, as C's cast after the offset.
      k[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    start[xx] = xmin;
    count[xx] = Math.max(xmax, 0);
  }
  return { ksize, start, count, k };
}

const clip8 = (v: number): number => (v <= 0 ? 0 : v >= ONE * 256 ? 255 : Math.floor(v / ONE));

/** Horizontal pass over rows [y0, y0 + rows) of `src`: width inW -> outW. */
function horizontal(src: Uint8Array, inW: number, y0: number, rows: number, outW: number, c: Coeffs): Uint8Array {
  const out = new Uint8Array(outW * rows * 3);
  const { ksize, start, count, k } = c;
  for (let y = 0; y < rows; y++) {
    const rowIn = (y0 + y) * inW * 3;
    const rowOut = y * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      const kb = xx * ksize;
      let p = rowIn + start[xx] * 3;
      const n = count[xx];
      for (let x = 0; x < n; x++, p += 3) {
        const w = k[kb + x];
        s0 += src[p] * w;
        s1 += src[p + 1] * w;
        s2 += src[p + 2] * w;
      }
      const o = rowOut + xx * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

/** Vertical pass: height inH -> outH, rows of `width` pixels; `shift` is subtracted from the coefficients' start rows. */
function vertical(src: Uint8Array, width: number, outH: number, c: Coeffs, shift: number): Uint8Array {
  const rowLen = width * 3;
  const out = new Uint8Array(rowLen * outH);
  const acc = new Int32Array(rowLen);
  const { ksize, start, count, k } = c;
  for (let yy = 0; yy < outH; yy++) {
    acc.fill(HALF);
    const n = count[yy];
    // Row by row over the taps: the same integer sums as Pillow's per-pixel
    // loop, read in memory order. They fit in int32 as in Pillow (that is
    // what its 22 bits of precision are chosen for).
    for (let y = 0; y < n; y++) {
      const w = k[yy * ksize + y];
      if (w === 0) continue;
      const base = (start[yy] - shift + y) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] = (acc[i] + src[base + i] * w) | 0;
    }
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) out[o + i] = clip8(acc[i]);
  }
  return out;
}

/** Pillow's NEAREST resize (ImagingScaleAffine: positions stepped by the scale in float64, truncated). */
function nearest(img: DecodedImage, outW: number, outH: number): DecodedImage {
  const ax = img.width / outW;
  const ay = img.height / outH;
  const xin = new Int32Array(outW);
  let xo = ax * 0.5;
  for (let x = 0; x < outW; x++, xo += ax) xin[x] = Math.min(Math.trunc(xo), img.width - 1);
  const out = new Uint8Array(outW * outH * 3);
  let yo = ay * 0.5;
  for (let y = 0; y < outH; y++, yo += ay) {
    const yi = Math.min(Math.trunc(yo), img.height - 1);
    for (let x = 0; x < outW; x++) {
      const s = (yi * img.width + xin[x]) * 3;
      const o = (y * outW + x) * 3;
      out[o] = img.data[s];
      out[o + 1] = img.data[s + 1];
      out[o + 2] = img.data[s + 2];
    }
  }
  return { data: out, width: outW, height: outH };
}

function checkSize(img: DecodedImage, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`resize: target size must be positive integers, got ${width}x${height}`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new Error(`resize: image data has ${img.data.length} bytes, expected ${img.width}x${img.height}x3 = ${img.width * img.height * 3}`);
  }
}

/** Resizes exactly as Pillow's Image.resize((width, height), resample) does for an 8-bit RGB image. */
export function resizePil(img: DecodedImage, width: number, height: number, resample: PilResample = PIL_RESAMPLE.LANCZOS): DecodedImage {
  checkSize(img, width, height);
  if (img.width === width && img.height === height) return { data: img.data.slice(), width, height };
  if (resample === PIL_RESAMPLE.NEAREST) return nearest(img, width, height);
  const filter = FILTERS[resample];
  if (!filter) throw new Error(`resize: unknown PIL resample filter ${String(resample)} (expected 0..5)`);
  const needH = width !== img.width;
  const needV = height !== img.height;
  const ch = coefficients(img.width, width, filter);
  const cv = coefficients(img.height, height, filter);
  let data = img.data;
  let shift = 0;
  if (needH) {
    // Only the source rows the vertical pass reads (Pillow's ybox_first..ybox_last).
    const first = cv.start[0];
    const last = cv.start[height - 1] + cv.count[height - 1];
    const y0 = needV ? first : 0;
    const rows = needV ? last - first : img.height;
    data = horizontal(data, img.width, y0, rows, width, ch);
    shift = y0;
  }
  if (needV) data = vertical(data, width, height, cv, shift);
  return { data, width, height };
}

const SHARP_KERNEL: Record<PilResample, keyof KernelEnum> = {
  0: "nearest",
  1: "lanczos3",
  2: "linear",
  3: "cubic",
  4: "linear",
  5: "linear",
};

/** Resizes with libvips (sharp), the kernel closest to the PIL filter. */
export async function resizeSharp(img: DecodedImage, width: number, height: number, resample: PilResample = PIL_RESAMPLE.LANCZOS): Promise<DecodedImage> {
  checkSize(img, width, height);
  if (img.width === width && img.height === height) return { data: img.data.slice(), width, height };
  const input = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  const buf = await sharp(input, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { fit: "fill", kernel: SHARP_KERNEL[resample] })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), width, height };
}

/** Resizes with the chosen backend. */
export async function resizeRgb(img: DecodedImage, width: number, height: number, resample: PilResample, backend: ResizeBackend): Promise<DecodedImage> {
  return backend === "pil" ? resizePil(img, width, height, resample) : resizeSharp(img, width, height, resample);
}
