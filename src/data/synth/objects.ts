// Object silhouettes for the synthetic scenes, each in its own coordinates
// with the long axis spanning about [-1, 1] (y down): weapons (knife, pistol,
// rifle) and safe look-alikes (hammer, wrench, screwdriver, umbrella, hair
// dryer, drill, mug, bottle). Proportions vary per draw. Shapes are chosen to
// stay recognisable as outlines at ~40 px: a pistol's slide-and-slanted-grip,
// a knife's pointed blade on a handle, a rifle's long barrel and stock.
//
// Materials carry the local cue (see color.ts): weapons are gunmetal / black
// polymer with a bright specular band along their main parts and hard
// edges; safe objects are bright plastic, wood, light steel or any other
// colour that is neither gunmetal- nor skin-like. With `lookalike` (the hard
// subset) tools may be dark-finished with the same specular band (black-oxide
// wrench, black hair dryer, a drill's black grip), and weapons may come in a
// matte tan finish without the band.
import type { Rng } from "../rng.js";
import { anyColor, gunColor, highlightColor, mix, plasticColor, safeColor, scale, steelColor, tanColor, woodColor } from "./color.js";
import { type Contour, ellipse, type RGB, rect, roundRect, type Shape, shape, stroke, type Vec } from "./raster.js";

/** Colouring of a part, in object coordinates (a gradient runs from `from` to `to`). */
export type PartPaint = { color: RGB } | { c0: RGB; c1: RGB; from: Vec; to: Vec };

export interface Part {
  shape: Shape;
  paint: PartPaint;
}

export type ObjectKind = "weapon" | "tool" | "figure";

export interface ObjectModel {
  /** e.g. "pistol", "hammer", "nude_figure". */
  name: string;
  kind: ObjectKind;
  /** Drawn in order. */
  parts: Part[];
  /** Object-space bounding box [x0, y0, x1, y1]. */
  bounds: [number, number, number, number];
  /** The colour that dominates the silhouette (for background contrast). */
  mainColor: RGB;
  /** Figures and umbrellas stand up: rotations are kept small. */
  upright: boolean;
  /** Object-space region that occluders must leave mostly visible (the torso of an unclothed figure). */
  core?: Shape;
}

const solid = (color: RGB): PartPaint => ({ color });
/** A top-lit vertical gradient over [y0, y1]. */
const shaded = (c: RGB, y0: number, y1: number, strength = 0.25): PartPaint => ({ c0: scale(c, 1 + strength), c1: scale(c, 1 - strength), from: [0, y0], to: [0, y1] });
const poly = (...pts: Vec[]): Contour => pts;

/** How a weapon (or a look-alike tool) is finished. */
export type Finish = "gunmetal" | "tan";

/** Finish-dependent colours: the body, a darker accent and the specular band (null for matte tan). */
interface Metal {
  body: RGB;
  dark: RGB;
  band: RGB | null;
}

function metalFor(rng: Rng, finish: Finish): Metal {
  if (finish === "tan") {
    const body = tanColor(rng);
    return { body, dark: scale(body, 0.8), band: null };
  }
  const body = gunColor(rng);
  return { body, dark: scale(body, 0.75), band: highlightColor(body, rng) };
}

/**
 * The specular band: a thin bright stripe along y from x0 to x1 (half-width
 * hw), or nothing for a matte finish. Drawn after the part it lies on.
 */
function band(m: Metal, x0: number, x1: number, y: number, hw: number): Part[] {
  return m.band ? [{ shape: shape([rect(x0, y - hw, x1, y + hw)]), paint: solid(m.band) }] : [];
}

/** Band half-width in object units (objects span ~2 units): about 1-2 px at 64 px in the normal subset. */
const bandHW = (rng: Rng) => rng.uniform(0.025, 0.035);

export function knife(rng: Rng, finish: Finish = "gunmetal"): ObjectModel {
  const m = metalFor(rng, finish);
  const handle = rng.chance(0.35) ? woodColor(rng) : scale(m.body, 0.8);
  const hEnd = -1 + rng.uniform(0.5, 0.7); // handle end / blade start
  const bw = rng.uniform(0.3, 0.42); // blade width
  const tipUp = rng.uniform(-0.1, 0.05) * bw;
  const blade = poly([hEnd + 0.04, -bw * 0.45], [0.5, -bw * 0.45], [1, tipUp], [0.72, bw * 0.38], [0.3, bw * 0.55], [hEnd + 0.04, bw * 0.55]);
  const hw = bandHW(rng);
  const parts: Part[] = [
    { shape: shape([roundRect(-1, -bw * 0.36, hEnd, bw * 0.42, 0.07)]), paint: shaded(handle, -bw * 0.4, bw * 0.4, 0.12) },
    { shape: shape([blade]), paint: shaded(m.body, -bw * 0.45, bw * 0.55, 0.12) },
    // the bevel catches the light: a band along the blade, just above its edge
    ...band(m, hEnd + 0.1, 0.62, bw * 0.22, hw * 1.2),
    { shape: shape([rect(hEnd - 0.02, -bw * 0.7, hEnd + 0.05, bw * 0.8)]), paint: solid(m.dark) },
  ];
  return { name: "knife", kind: "weapon", parts, bounds: [-1, -bw * 0.7, 1, bw * 0.8], mainColor: m.body, upright: false };
}

export function pistol(rng: Rng, finish: Finish = "gunmetal"): ObjectModel {
  const m = metalFor(rng, finish);
  const grip = rng.chance(0.2) ? woodColor(rng) : m.dark;
  const front = rng.uniform(0.75, 1); // barrel length
  const gripSlant = rng.uniform(0.08, 0.2);
  const hw = bandHW(rng);
  const parts: Part[] = [
    // grip, slanted backwards
    { shape: shape([poly([-0.8, -0.14], [-0.3, -0.14], [-0.36 - gripSlant, 0.8], [-0.88 - gripSlant, 0.74])]), paint: shaded(grip, -0.1, 0.8, 0.1) },
    // frame under the slide
    { shape: shape([rect(-0.6, -0.22, front - 0.2, -0.04)]), paint: solid(m.dark) },
    // trigger guard: the lower half of a ring under the frame
    { shape: shape([ellipse(-0.08, -0.06, 0.26, 0.22, 16, 0, Math.PI)], [ellipse(-0.08, -0.06, 0.15, 0.12, 16)]), paint: solid(m.body) },
    { shape: shape([poly([-0.12, -0.06], [-0.05, -0.06], [-0.09, 0.07], [-0.13, 0.06])]), paint: solid(m.body) },
    // slide with a front sight
    { shape: shape([roundRect(-0.95, -0.52, front, -0.18, 0.03), rect(front - 0.12, -0.59, front - 0.05, -0.5)]), paint: shaded(m.body, -0.52, -0.18, 0.12) },
    ...band(m, -0.9, front - 0.06, -0.41, hw),
  ];
  return { name: "pistol", kind: "weapon", parts, bounds: [-0.88 - gripSlant, -0.59, front, 0.8], mainColor: m.body, upright: false };
}

export function rifle(rng: Rng, finish: Finish = "gunmetal"): ObjectModel {
  const m = metalFor(rng, finish);
  const stock = rng.chance(0.4) ? woodColor(rng) : m.dark;
  const curvedMag = rng.chance(0.5);
  const hw = bandHW(rng);
  const parts: Part[] = [
    { shape: shape([poly([-0.42, -0.13], [-1, -0.07], [-1, 0.24], [-0.88, 0.26], [-0.42, 0.08])]), paint: shaded(stock, -0.13, 0.26, 0.12) },
    {
      shape: shape([curvedMag ? poly([0, 0.06], [0.15, 0.06], [0.25, 0.36], [0.1, 0.4]) : poly([0, 0.06], [0.14, 0.06], [0.14, 0.38], [0, 0.38])]),
      paint: solid(m.dark),
    },
    { shape: shape([poly([-0.32, 0.06], [-0.18, 0.06], [-0.24, 0.29], [-0.38, 0.27])]), paint: solid(m.dark) },
    { shape: shape([rect(-0.45, -0.15, 0.25, 0.08)]), paint: shaded(m.body, -0.15, 0.08, 0.12) },
    { shape: shape([roundRect(0.2, -0.12, 0.62, 0.06, 0.02)]), paint: solid(rng.chance(0.5) ? stock : m.body) },
    { shape: shape([rect(0.6, -0.08, 1, -0.01), rect(0.9, -0.15, 0.94, -0.07)]), paint: solid(m.body) },
    ...band(m, -0.43, 0.6, -0.09, hw),
  ];
  let top = -0.15;
  if (rng.chance(0.5)) {
    parts.push({ shape: shape([roundRect(-0.3, -0.28, 0.15, -0.17, 0.04), rect(-0.2, -0.18, -0.15, -0.13), rect(0.02, -0.18, 0.07, -0.13)]), paint: solid(m.dark) });
    top = -0.28;
  }
  return { name: "rifle", kind: "weapon", parts, bounds: [-1, top, 1, 0.4], mainColor: m.body, upright: false };
}

export function hammer(rng: Rng, lookalike = false): ObjectModel {
  const handle = rng.chance(0.5) ? woodColor(rng) : plasticColor(rng);
  const head = lookalike && rng.chance(0.5) ? gunColor(rng) : steelColor(rng);
  const parts: Part[] = [
    { shape: shape([roundRect(-1, -0.075, 0.6, 0.075, 0.05)]), paint: shaded(handle, -0.075, 0.075) },
    { shape: shape([rect(0.5, -0.42, 0.8, -0.05), poly([0.5, -0.06], [0.8, -0.06], [0.74, 0.32], [0.6, 0.36])]), paint: shaded(head, -0.42, 0.36, 0.15) },
  ];
  return { name: "hammer", kind: "tool", parts, bounds: [-1, -0.42, 0.8, 0.36], mainColor: handle, upright: false };
}

export function wrench(rng: Rng, lookalike = false): ObjectModel {
  // lookalike: black-oxide finish with the same specular band as a gun
  const dark = lookalike && rng.chance(0.7);
  const steel = dark ? gunColor(rng) : steelColor(rng);
  const parts: Part[] = [
    {
      shape: shape(
        [roundRect(-0.72, -0.075, 0.72, 0.075, 0.04), ellipse(0.8, 0, 0.23, 0.23, 20), ellipse(-0.82, 0, 0.18, 0.18, 20)],
        [poly([0.8, -0.09], [1.1, -0.12], [1.1, 0.12], [0.8, 0.09]), ellipse(0.8, 0, 0.09, 0.09, 12), ellipse(-0.82, 0, 0.09, 0.09, 12)],
      ),
      paint: shaded(steel, -0.23, 0.23, 0.15),
    },
  ];
  if (dark) parts.push(...band({ body: steel, dark: steel, band: highlightColor(steel, rng) }, -0.7, 0.6, -0.02, bandHW(rng)));
  return { name: "wrench", kind: "tool", parts, bounds: [-1, -0.23, 1.03, 0.23], mainColor: steel, upright: false };
}

export function screwdriver(rng: Rng): ObjectModel {
  const handle = plasticColor(rng);
  const steel = steelColor(rng);
  const parts: Part[] = [
    { shape: shape([rect(-0.3, -0.035, 0.86, 0.035), poly([0.86, -0.035], [0.99, -0.015], [0.99, 0.015], [0.86, 0.035])]), paint: solid(steel) },
    { shape: shape([roundRect(-1, -0.15, -0.28, 0.15, 0.1)]), paint: shaded(handle, -0.15, 0.15) },
  ];
  return { name: "screwdriver", kind: "tool", parts, bounds: [-1, -0.15, 0.99, 0.15], mainColor: handle, upright: false };
}

export function umbrella(rng: Rng, lookalike = false): ObjectModel {
  const canopy = lookalike && rng.chance(0.4) ? gunColor(rng) : plasticColor(rng);
  const dark = scale(lookalike ? anyColor(rng) : plasticColor(rng), 0.5);
  const ribs = rng.int(4, 6);
  const scallops: Contour[] = [];
  for (let k = 0; k < ribs; k++) {
    const x = -0.9 + (1.8 * (k + 0.5)) / ribs;
    scallops.push(ellipse(x, -0.12, 0.9 / ribs, 0.1, 12));
  }
  const hook: Vec[] = [];
  for (let k = 0; k <= 8; k++) hook.push([0.12 - 0.12 * Math.cos((Math.PI * k) / 8), 0.72 + 0.12 * Math.sin((Math.PI * k) / 8)]);
  const parts: Part[] = [
    { shape: shape([rect(-0.025, -0.2, 0.025, 0.72), ...stroke(hook, 0.04)]), paint: solid(dark) },
    { shape: shape([ellipse(0, -0.12, 0.9, 0.65, 28, Math.PI, 2 * Math.PI)], scallops), paint: shaded(canopy, -0.77, -0.12) },
    { shape: shape([rect(-0.02, -0.88, 0.02, -0.74)]), paint: solid(dark) },
  ];
  return { name: "umbrella", kind: "tool", parts, bounds: [-0.9, -0.88, 0.9, 0.88], mainColor: canopy, upright: true };
}

export function hairDryer(rng: Rng, dark = false): ObjectModel {
  const body = dark ? gunColor(rng) : plasticColor(rng);
  const parts: Part[] = [
    { shape: shape([roundRect(-0.32, -0.2, 0.02, 0.78, 0.1)]), paint: shaded(scale(body, 0.9), -0.2, 0.78, 0.15) },
    { shape: shape([roundRect(-0.6, -0.58, 0.5, -0.1, 0.22), ellipse(-0.55, -0.34, 0.28, 0.28, 20), rect(0.45, -0.47, 0.92, -0.21)]), paint: shaded(body, -0.6, -0.1) },
    { shape: shape([ellipse(-0.55, -0.34, 0.15, 0.15, 14)]), paint: solid(scale(body, 0.6)) },
  ];
  // a glossy black dryer shows the same kind of specular band as gunmetal
  if (dark) parts.push(...band({ body, dark: body, band: highlightColor(body, rng) }, -0.3, 0.85, -0.45, bandHW(rng)));
  return { name: "hair_dryer", kind: "tool", parts, bounds: [-0.83, -0.62, 0.92, 0.78], mainColor: body, upright: false };
}

export function drill(rng: Rng): ObjectModel {
  const body = plasticColor(rng);
  const black = scale(gunColor(rng), 0.6);
  const parts: Part[] = [
    { shape: shape([poly([-0.45, -0.15], [-0.1, -0.15], [-0.14, 0.52], [-0.42, 0.52])]), paint: solid(body) },
    { shape: shape([roundRect(-0.62, 0.48, 0.08, 0.76, 0.05)]), paint: solid(black) },
    { shape: shape([roundRect(-0.75, -0.52, 0.45, -0.1, 0.16)]), paint: shaded(body, -0.52, -0.1) },
    { shape: shape([poly([0.42, -0.44], [0.72, -0.38], [0.72, -0.24], [0.42, -0.18])]), paint: solid(black) },
    { shape: shape([rect(0.72, -0.33, 1, -0.29)]), paint: solid(mix(black, [0.8, 0.8, 0.8], 0.6)) },
  ];
  return { name: "drill", kind: "tool", parts, bounds: [-0.75, -0.52, 1, 0.76], mainColor: body, upright: false };
}

export function mug(rng: Rng, lookalike = false): ObjectModel {
  const c = lookalike ? anyColor(rng) : safeColor(rng);
  const parts: Part[] = [
    { shape: shape([ellipse(0.42, 0, 0.32, 0.32, 20)], [ellipse(0.42, 0, 0.19, 0.2, 16)]), paint: solid(scale(c, 0.9)) },
    { shape: shape([roundRect(-0.5, -0.62, 0.45, 0.62, 0.08)]), paint: shaded(c, -0.62, 0.62, 0.15) },
  ];
  return { name: "mug", kind: "tool", parts, bounds: [-0.5, -0.62, 0.74, 0.62], mainColor: c, upright: true };
}

export function bottle(rng: Rng, lookalike = false): ObjectModel {
  const c = lookalike ? anyColor(rng) : safeColor(rng);
  const parts: Part[] = [
    { shape: shape([roundRect(-0.3, -0.35, 0.3, 1, 0.1), poly([-0.3, -0.3], [-0.11, -0.6], [0.11, -0.6], [0.3, -0.3]), rect(-0.11, -0.9, 0.11, -0.55)]), paint: shaded(c, -0.9, 1, 0.2) },
    { shape: shape([rect(-0.3, 0.05, 0.3, 0.5)]), paint: solid(plasticColor(rng)) },
  ];
  return { name: "bottle", kind: "tool", parts, bounds: [-0.3, -0.9, 0.3, 1], mainColor: c, upright: true };
}

export type ObjectMaker = (rng: Rng) => ObjectModel;

/** Weapons in the gunmetal finish (normal subset). */
export const WEAPONS: Record<string, ObjectMaker> = { knife: (r) => knife(r), pistol: (r) => pistol(r), rifle: (r) => rifle(r) };
/** Hard-subset weapons: a third in matte tan, without the specular band. */
export const HARD_WEAPONS: Record<string, ObjectMaker> = {
  knife: (r) => knife(r, r.chance(1 / 3) ? "tan" : "gunmetal"),
  pistol: (r) => pistol(r, r.chance(1 / 3) ? "tan" : "gunmetal"),
  rifle: (r) => rifle(r, r.chance(1 / 3) ? "tan" : "gunmetal"),
};
/** Safe objects used in the normal subset: no gunmetal, no skin-like colour. */
export const TOOLS: Record<string, ObjectMaker> = {
  hammer: (r) => hammer(r),
  wrench: (r) => wrench(r),
  screwdriver,
  umbrella: (r) => umbrella(r),
  hair_dryer: (r) => hairDryer(r),
  mug: (r) => mug(r),
  bottle: (r) => bottle(r),
};
/** Look-alikes for the hard subset: dark finishes with a specular band, a drill's black grip, any colour. */
export const HARD_TOOLS: Record<string, ObjectMaker> = {
  drill,
  dark_hair_dryer: (r) => hairDryer(r, true),
  wrench: (r) => wrench(r, true),
  hammer: (r) => hammer(r, true),
  umbrella: (r) => umbrella(r, true),
  mug: (r) => mug(r, true),
};
