// Human figure silhouettes, the procedural stand-in for the nudity category:
// a front-facing body (head, torso, arms, legs) in a skin tone. The
// "unclothed" figure is that body alone; the "clothed" one is the same body
// with a shirt (short or long sleeves) and trousers, shorts or a skirt drawn
// over it in non-skin colours. The cue a model must learn is thus how much of
// the torso and hips shows skin, not whether a person is present: an
// unclothed figure shows one large connected skin-tone area (torso and
// legs), a clothed one shows skin on the head, hands and at most forearms and
// shins. Bodies are drawn broad (a stylised, chunky build) so that the torso
// fills several 8x8 patches at 64 px. In the hard subset clothes may be short
// or beige (close to a skin tone). Nothing anatomical is drawn: these are
// flat shapes, not depictions.
// Object coordinates: y from -1 (top of head) to about 1 (feet), x about [-0.5, 0.5].
import type { Rng } from "../rng.js";
import { beigeClothColor, clothColor, gunmetalLike, scale, skinTone } from "./color.js";
import type { ObjectModel, Part, PartPaint } from "./objects.js";
import { capsule, type Contour, ellipse, type RGB, shape, taper, type Vec } from "./raster.js";

interface Body {
  head: Vec;
  headR: number;
  shoulderW: number;
  waistW: number;
  hipW: number;
  /** shoulder, elbow, wrist for left and right */
  arms: [Vec, Vec, Vec][];
  /** hip, knee, ankle for left and right */
  legs: [Vec, Vec, Vec][];
  armR: number;
  legR: number;
  shoulderY: number;
  hipY: number;
}

function pose(rng: Rng): Body {
  const shoulderW = rng.uniform(0.23, 0.29);
  const hipW = rng.uniform(0.19, 0.24);
  const waistW = Math.min(shoulderW, hipW) - rng.uniform(0.0, 0.03);
  const shoulderY = -0.68;
  const hipY = 0.06;
  const armR = rng.uniform(0.055, 0.07);
  const legR = rng.uniform(0.085, 0.105);
  const arms: [Vec, Vec, Vec][] = [];
  for (const side of [-1, 1]) {
    // angle from straight down, outwards; elbows bend a little
    const a = rng.uniform(0.12, rng.chance(0.25) ? 2.4 : 0.7);
    const bend = rng.uniform(-0.3, 0.5);
    const s: Vec = [side * (shoulderW - 0.02), shoulderY + 0.05];
    const e: Vec = [s[0] + side * 0.3 * Math.sin(a), s[1] + 0.3 * Math.cos(a)];
    const w: Vec = [e[0] + side * 0.28 * Math.sin(a + bend), e[1] + 0.28 * Math.cos(a + bend)];
    arms.push([s, e, w]);
  }
  const legs: [Vec, Vec, Vec][] = [];
  const spread = rng.uniform(0.02, 0.3);
  for (const side of [-1, 1]) {
    const h: Vec = [side * hipW * 0.5, hipY];
    const k: Vec = [h[0] + side * 0.44 * Math.sin(spread), h[1] + 0.44 * Math.cos(spread)];
    const a: Vec = [k[0] + side * 0.42 * Math.sin(spread * 0.6), k[1] + 0.42 * Math.cos(spread * 0.6)];
    legs.push([h, k, a]);
  }
  return { head: [0, -0.87], headR: rng.uniform(0.11, 0.13), shoulderW, waistW, hipW, arms, legs, armR, legR, shoulderY, hipY };
}

const poly = (...pts: Vec[]): Contour => pts;

function torso(b: Body, grow = 0): Contour {
  const g = grow;
  return poly(
    [-b.shoulderW - g, b.shoulderY - g],
    [b.shoulderW + g, b.shoulderY - g],
    [b.waistW + g, -0.22],
    [b.hipW + g, b.hipY + 0.02 + g],
    [-b.hipW - g, b.hipY + 0.02 + g],
    [-b.waistW - g, -0.22],
  );
}

/** The bare body: every part in one skin tone, lit from above. */
function bodyParts(b: Body, skin: RGB): Part[] {
  const paint: PartPaint = { c0: scale(skin, 1.12), c1: scale(skin, 0.85), from: [0, -1], to: [0, 1] };
  const limbs: Contour[] = [];
  for (const [s, e, w] of b.arms) limbs.push(taper(s, e, b.armR * 1.1, b.armR), taper(e, w, b.armR, b.armR * 0.8), ellipse(w[0], w[1] + 0.03, b.armR * 1.1, b.armR * 1.3, 10));
  for (const [h, k, a] of b.legs) limbs.push(taper(h, k, b.legR * 1.25, b.legR), taper(k, a, b.legR, b.legR * 0.7), capsule(a, [a[0] + Math.sign(a[0]) * 0.06, a[1] + 0.03], b.legR * 0.55, 6));
  return [
    {
      shape: shape([
        ...limbs,
        torso(b),
        capsule([-b.shoulderW + 0.04, b.shoulderY + 0.04], [b.shoulderW - 0.04, b.shoulderY + 0.04], 0.06, 6),
        capsule([0, -0.8], [0, b.shoulderY + 0.02], 0.05, 6),
        ellipse(b.head[0], b.head[1], b.headR, b.headR * 1.15, 20),
      ]),
      paint,
    },
  ];
}

function hairPart(b: Body, rng: Rng): Part {
  const hair = scale(rng.pick<RGB>([[0.1, 0.07, 0.05], [0.35, 0.2, 0.1], [0.75, 0.6, 0.3], [0.5, 0.5, 0.5], [0.55, 0.2, 0.1]]), rng.uniform(0.8, 1.1));
  const [hx, hy] = b.head;
  const r = b.headR * 1.08;
  return { shape: shape([ellipse(hx, hy - 0.01, r, r * 1.05, 18, Math.PI, 2 * Math.PI)]), paint: { color: hair } };
}

const bounds = (b: Body): [number, number, number, number] => {
  const xs = [...b.arms.flatMap((a) => a.map((p) => p[0])), ...b.legs.flatMap((l) => l.map((p) => p[0])), -b.shoulderW, b.shoulderW];
  const ys = [...b.arms.flatMap((a) => a.map((p) => p[1])), ...b.legs.flatMap((l) => l.map((p) => p[1]))];
  const m = 0.1;
  return [Math.min(...xs) - m, b.head[1] - b.headR * 1.2, Math.max(...xs) + m, Math.max(...ys) + m];
};

/** An unclothed figure: the bare body in a skin tone (the "nudity" stand-in). */
export function nudeFigure(rng: Rng): ObjectModel {
  const b = pose(rng);
  const skin = skinTone(rng);
  const parts = bodyParts(b, skin);
  if (rng.chance(0.8)) parts.push(hairPart(b, rng));
  return { name: "nude_figure", kind: "figure", parts, bounds: bounds(b), mainColor: skin, upright: true, core: shape([torso(b)]) };
}

export interface ClothesOptions {
  /** Allow short sleeves and shorts (more skin shows; used more in the hard subset). Default true. */
  allowShort?: boolean;
  /** Allow black / dark grey garments (gunmetal-like; the normal subset leaves them out). Default true. */
  allowDark?: boolean;
  /** Chance that the outfit is beige, close to a skin tone (a hard-subset look-alike). Default 0. */
  beigeChance?: number;
}

/** The same body, dressed: shirt + trousers / shorts / skirt, and shoes (safe). */
export function clothedFigure(rng: Rng, opts: ClothesOptions = {}): ObjectModel {
  const allowShort = opts.allowShort ?? true;
  const allowDark = opts.allowDark ?? true;
  const beige = rng.chance(opts.beigeChance ?? 0);
  const b = pose(rng);
  const skin = skinTone(rng);
  const shirt = beige ? beigeClothColor(rng) : clothColor(rng, allowDark);
  let lower = beige && rng.chance(0.6) ? beigeClothColor(rng) : clothColor(rng, allowDark);
  if (rng.chance(0.3) && !beige && (allowDark || !gunmetalLike(scale(shirt, 0.6)))) lower = scale(shirt, 0.6);
  const parts = bodyParts(b, skin);
  if (rng.chance(0.8)) parts.push(hairPart(b, rng));

  // Lower garment
  const style = rng.pick(allowShort ? ["trousers", "trousers", "shorts", "skirt"] : ["trousers", "trousers", "skirt"]);
  const lowerSolids: Contour[] = [poly([-b.hipW - 0.02, -0.08], [b.hipW + 0.02, -0.08], [b.hipW + 0.03, b.hipY + 0.1], [-b.hipW - 0.03, b.hipY + 0.1])];
  if (style === "skirt") {
    const kneeY = b.legs[0][1][1] + 0.05;
    lowerSolids.push(poly([-b.hipW - 0.02, -0.05], [b.hipW + 0.02, -0.05], [b.hipW + 0.16, kneeY], [-b.hipW - 0.16, kneeY]));
  } else {
    for (const [h, k, a] of b.legs) {
      lowerSolids.push(taper(h, k, b.legR * 1.25 + 0.025, b.legR + 0.02, 6));
      if (style === "trousers") lowerSolids.push(taper(k, a, b.legR + 0.02, b.legR * 0.75 + 0.02, 6));
    }
  }
  parts.push({ shape: shape(lowerSolids), paint: { c0: scale(lower, 1.1), c1: scale(lower, 0.85), from: [0, -0.1], to: [0, 1] } });

  // Shirt: torso plus sleeves
  const long = !allowShort || rng.chance(0.55);
  const shirtSolids: Contour[] = [torso(b, 0.025), capsule([-b.shoulderW + 0.04, b.shoulderY + 0.03], [b.shoulderW - 0.04, b.shoulderY + 0.03], 0.075, 6)];
  for (const [s, e, w] of b.arms) {
    if (long) shirtSolids.push(taper(s, e, b.armR * 1.1 + 0.025, b.armR + 0.02, 6), taper(e, w, b.armR + 0.02, b.armR * 0.8 + 0.02, 6));
    else {
      const mid: Vec = [s[0] + (e[0] - s[0]) * 0.6, s[1] + (e[1] - s[1]) * 0.6];
      shirtSolids.push(taper(s, mid, b.armR * 1.1 + 0.03, b.armR + 0.025, 6));
    }
  }
  // a V or round neckline shows skin at the neck only
  const neck = ellipse(0, b.shoulderY - 0.01, 0.07, rng.uniform(0.05, 0.1), 12, 0, Math.PI);
  parts.push({ shape: shape(shirtSolids, [neck]), paint: { c0: scale(shirt, 1.1), c1: scale(shirt, 0.85), from: [0, -0.7], to: [0, 0.1] } });

  // Shoes
  const shoe = scale(clothColor(rng, allowDark), allowDark ? 0.5 : 0.8);
  parts.push({
    shape: shape(b.legs.map(([, , a]) => capsule([a[0] - Math.sign(a[0]) * 0.02, a[1]], [a[0] + Math.sign(a[0]) * 0.07, a[1] + 0.04], b.legR * 0.75, 6))),
    paint: { color: shoe },
  });
  return { name: "clothed_figure", kind: "figure", parts, bounds: bounds(b), mainColor: shirt, upright: true };
}
