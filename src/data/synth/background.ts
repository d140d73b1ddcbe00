// Backgrounds for the synthetic scenes: solid, linear and radial gradients,
// smooth value noise, stripes, checks and a wood-like grain. Two colours are
// picked to contrast with the scene's main objects; `busy` (0..1) sets how far
// apart those two colours may be, i.e. how much the background itself competes
// for attention (low in the normal subset, higher in the hard one).
// `palette` and `kinds` narrow the choice: the normal subset uses calm
// colours (never skin-like or gunmetal-like, see color.ts) and smooth kinds,
// so that the background carries none of the categories' local cues.
import type { Rng } from "../rng.js";
import { anyColor, contrastingColor, luma, mix } from "./color.js";
import type { Canvas, RGB } from "./raster.js";

export type BackgroundKind = "solid" | "linear" | "radial" | "noise" | "stripes" | "checks" | "grain";
export const BACKGROUND_KINDS: readonly BackgroundKind[] = ["solid", "linear", "radial", "noise", "stripes", "checks", "grain"];

export interface BackgroundOptions {
  /** Colours the background should stand apart from (the main objects'). */
  avoid: readonly RGB[];
  /** Minimum brightness gap to each of them (0..1). */
  minGap: number;
  /** 0..1: how different the background's two colours may be. */
  busy: number;
  /** Draws candidate colours for both background colours (default: anyColor, i.e. any colour at all). */
  palette?: (rng: Rng) => RGB;
  /** Kinds to choose from (default: all of BACKGROUND_KINDS). */
  kinds?: readonly BackgroundKind[];
  /** A test the second colour must pass, else the background is flat c0 coloured (default: none). */
  accept?: (c: RGB) => boolean;
}

/** Smooth kinds without repeating edges (the normal subset's choice). */
export const CALM_BACKGROUND_KINDS: readonly BackgroundKind[] = ["solid", "linear", "radial", "noise"];

const smooth = (t: number) => t * t * (3 - 2 * t);

/** Fills the whole canvas; returns the kind drawn and its two colours. */
export function drawBackground(canvas: Canvas, rng: Rng, opts: BackgroundOptions): { kind: BackgroundKind; colors: [RGB, RGB] } {
  const { w, h, data } = canvas;
  const palette = opts.palette ?? anyColor;
  const kind = rng.pick(opts.kinds ?? BACKGROUND_KINDS);
  const c0 = contrastingColor(rng, opts.avoid, opts.minGap, palette);
  // The second colour: a step from c0 towards another palette colour, kept on the same side of the objects.
  let c1 = mix(c0, palette(rng), rng.uniform(0.15, 0.25 + 0.6 * opts.busy));
  if (opts.avoid.some((a) => Math.abs(luma(a) - luma(c1)) < opts.minGap * 0.8)) c1 = mix(c0, c1, 0.3);
  if (opts.accept && !opts.accept(c1)) c1 = opts.accept(mix(c0, c1, 0.3)) ? mix(c0, c1, 0.3) : c0;

  const angle = rng.uniform(0, Math.PI);
  const ca = Math.cos(angle);
  const sa = Math.sin(angle);
  const period = rng.uniform(0.08, 0.3) * w;
  const cx = rng.uniform(0, w);
  const cy = rng.uniform(0, h);
  const radius = rng.uniform(0.5, 1.2) * w;
  const g = rng.int(2, 6);
  const grid = Array.from({ length: (g + 1) * (g + 1) }, () => rng.next());
  const grainAmp = rng.uniform(2, 8);
  const noiseAt = (x: number, y: number) => {
    const gx = (x / w) * g;
    const gy = (y / h) * g;
    const ix = Math.min(g - 1, Math.floor(gx));
    const iy = Math.min(g - 1, Math.floor(gy));
    const fx = smooth(gx - ix);
    const fy = smooth(gy - iy);
    const v = (i: number, j: number) => grid[j * (g + 1) + i];
    const top = v(ix, iy) + (v(ix + 1, iy) - v(ix, iy)) * fx;
    const bot = v(ix, iy + 1) + (v(ix + 1, iy + 1) - v(ix, iy + 1)) * fx;
    return top + (bot - top) * fy;
  };

  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const u = x * ca + y * sa;
      let t: number;
      switch (kind) {
        case "solid":
          t = 0;
          break;
        case "linear":
          t = u / (w * Math.SQRT2) + 0.5 * (1 - ca - sa) / Math.SQRT2;
          break;
        case "radial":
          t = Math.hypot(x - cx, y - cy) / radius;
          break;
        case "noise":
          t = noiseAt(x, y);
          break;
        case "stripes":
          t = 0.5 + 0.5 * Math.sin((2 * Math.PI * u) / period);
          break;
        case "checks": {
          const v = -x * sa + y * ca;
          t = (Math.floor(u / period) + Math.floor(v / period)) & 1;
          break;
        }
        case "grain":
          t = 0.5 + 0.5 * Math.sin((2 * Math.PI * (u + grainAmp * period * 0.2 * noiseAt(x, y))) / period);
          break;
      }
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const o = 3 * (y * w + x);
      data[o] = c0[0] + (c1[0] - c0[0]) * t;
      data[o + 1] = c0[1] + (c1[1] - c0[1]) * t;
      data[o + 2] = c0[2] + (c1[2] - c0[2]) * t;
    }
  }
  return { kind, colors: [c0, c1] };
}
