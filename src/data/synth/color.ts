// Colours for the synthetic scenes: palettes per material and the contrast
// rules that keep the normal subset readable at 64 px.
//
// The materials are the local, position-independent cues a small model can
// pick up from single 8x8 patches: weapons are dark blue-grey gunmetal or
// black polymer with a bright specular band; bare skin is one of a wide range
// of skin tones; clothes, plastic, light steel and backgrounds in the normal
// subset are kept away from both (`calm*` / `safe*` palettes). The hard
// subset mixes look-alikes back in (dark tools, beige clothes, skin-like or
// dark backgrounds).
import type { Rng } from "../rng.js";
import type { RGB } from "./raster.js";

/** Relative luminance-like brightness (Rec. 601 weights on the 0..1 channels). */
export function luma(c: RGB): number {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
}

export function mix(a: RGB, b: RGB, t: number): RGB {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

export function scale(c: RGB, f: number): RGB {
  return [Math.min(1, c[0] * f), Math.min(1, c[1] * f), Math.min(1, c[2] * f)];
}

export function dist(a: RGB, b: RGB): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

const hex = (s: string): RGB => [parseInt(s.slice(1, 3), 16) / 255, parseInt(s.slice(3, 5), 16) / 255, parseInt(s.slice(5, 7), 16) / 255];

/** HSV (h in [0, 1)) to RGB. */
export function hsv(h: number, s: number, v: number): RGB {
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  switch (((i % 6) + 6) % 6) {
    case 0:
      return [v, t, p];
    case 1:
      return [q, v, p];
    case 2:
      return [p, v, t];
    case 3:
      return [p, q, v];
    case 4:
      return [t, p, v];
    default:
      return [v, p, q];
  }
}

/** A wide range of human skin tones, light to dark. */
const SKIN: RGB[] = ["#f6d7c3", "#f1c27d", "#e0ac69", "#c68642", "#a86b3c", "#8d5524", "#6b4226", "#4f3020"].map(hex);

export function skinTone(rng: Rng): RGB {
  const a = rng.pick(SKIN);
  const b = rng.pick(SKIN);
  return mix(a, b, rng.next() * 0.3);
}

/** Distance from a colour to the nearest of the reference skin tones (RGB, channels in [0, 1]). */
export function skinDistance(c: RGB): number {
  return Math.min(...SKIN.map((s) => dist(s, c)));
}

/** True when a colour could pass for skin (used to keep clothes from looking like bare skin). */
export function skinLike(c: RGB): boolean {
  return skinDistance(c) < 0.22;
}

/**
 * True for the dark, nearly neutral (slightly blue) colours of gunmetal and
 * black polymer: brightness below 0.34 and little saturation.
 */
export function gunmetalLike(c: RGB): boolean {
  const mx = Math.max(...c);
  const mn = Math.min(...c);
  return mx < 0.36 && mx - mn < 0.09;
}

/**
 * Clothing: saturated or neutral colours, never skin-like. With `allowDark`
 * false (the normal subset) also never gunmetal-like, so that dark matte
 * material stays a weapon cue there. Default allowDark: true.
 */
export function clothColor(rng: Rng, allowDark = true): RGB {
  for (let k = 0; k < 20; k++) {
    const c = rng.chance(0.25) ? hsv(0, 0, rng.pick([0.08, 0.2, 0.35, 0.9, 0.97])) : hsv(rng.next(), rng.uniform(0.55, 1), rng.uniform(0.3, 0.95));
    if (!skinLike(c) && (allowDark || !gunmetalLike(c))) return c;
  }
  return hex("#2040c0");
}

/** Beige / tan clothing close to a skin tone (a hard-subset look-alike). */
export function beigeClothColor(rng: Rng): RGB {
  return mix(skinTone(rng), [0.85, 0.8, 0.72], rng.uniform(0.1, 0.35));
}

/** Gunmetal or black polymer: dark, slightly blue grey (always gunmetalLike). */
export function gunColor(rng: Rng): RGB {
  return hsv(rng.uniform(0.55, 0.65), rng.uniform(0.05, 0.22), rng.uniform(0.1, 0.3));
}

/** Flat dark earth / tan finish (some hard-subset weapons). */
export function tanColor(rng: Rng): RGB {
  return hsv(rng.uniform(0.08, 0.12), rng.uniform(0.3, 0.45), rng.uniform(0.5, 0.68));
}

/** The specular band on polished or oiled metal: near white, a touch of the base's hue. */
export function highlightColor(base: RGB, rng: Rng): RGB {
  return mix(base, [0.93, 0.96, 1], rng.uniform(0.75, 0.9));
}

/** Blade steel, light to mid grey. */
export function steelColor(rng: Rng): RGB {
  return hsv(0.58, rng.uniform(0, 0.1), rng.uniform(0.55, 0.85));
}

export function woodColor(rng: Rng): RGB {
  return hsv(rng.uniform(0.05, 0.1), rng.uniform(0.45, 0.75), rng.uniform(0.3, 0.65));
}

/** Bright plastic (tool handles, hair dryers, umbrellas); never skin-like. */
export function plasticColor(rng: Rng): RGB {
  for (let k = 0; k < 20; k++) {
    const c = hsv(rng.next(), rng.uniform(0.6, 1), rng.uniform(0.6, 1));
    if (!skinLike(c)) return c;
  }
  return hex("#20a040");
}

/** A colour for a safe object in the normal subset: anything but skin-like or gunmetal-like. */
export function safeColor(rng: Rng): RGB {
  for (let k = 0; k < 20; k++) {
    const c = anyColor(rng);
    // its shaded (darker) side must not turn gunmetal-like either
    if (!skinLike(c) && !gunmetalLike(scale(c, 0.8))) return c;
  }
  return hex("#3070d0");
}

/**
 * A calm background colour for the normal subset: mid to light, neither
 * gunmetal-like nor near a skin tone (a margin beyond skinLike, so that
 * gradients and pixel noise stay clear of skin too).
 */
export function calmColor(rng: Rng): RGB {
  for (let k = 0; k < 30; k++) {
    const c = hsv(rng.next(), rng.uniform(0.05, 0.6), rng.uniform(0.4, 0.97));
    if (calmOk(c)) return c;
  }
  return hex("#a0c0e0");
}

/** The test calmColor applies: at least 0.3 from every skin tone and not gunmetal-like. */
export function calmOk(c: RGB): boolean {
  return skinDistance(c) >= 0.3 && !gunmetalLike(c);
}

/** Any colour at all. */
export function anyColor(rng: Rng): RGB {
  return hsv(rng.next(), rng.uniform(0, 1), rng.uniform(0.05, 1));
}

/**
 * A colour whose brightness differs from every colour in `avoid` by at
 * least `minGap` (retries, then the best found).
 */
export function contrastingColor(rng: Rng, avoid: readonly RGB[], minGap: number, draw: (rng: Rng) => RGB = anyColor): RGB {
  let best = draw(rng);
  let bestGap = -1;
  for (let k = 0; k < 40; k++) {
    const c = k === 0 ? best : draw(rng);
    const gap = Math.min(...avoid.map((a) => Math.abs(luma(a) - luma(c))));
    if (gap >= minGap) return c;
    if (gap > bestGap) {
      best = c;
      bestGap = gap;
    }
  }
  return best;
}
