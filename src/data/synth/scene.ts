// One synthetic scene: background, clutter, the objects that decide the
// labels (a weapon for "weapons", an unclothed figure for "nudity"), safe
// look-alikes, occluders, pixel noise.
//
// Normal subset: 1-2 large objects (a lone one spans 60-90% of the image,
// a pair 45-60% each; figures 10% more), drawn in the categories' materials
// (gunmetal with a specular band; a large bare skin area) while everything
// else - safe objects, clothes, clutter, a calm background with a clear
// brightness gap to the objects - is kept neither gunmetal- nor skin-like,
// at most ~15% of an object hidden. So each class has a local cue that
// single 8x8 patches show wherever the object lies.
// Hard subset: small objects (26-46%), lower contrast, busier backgrounds
// (any colour, including skin-like and dark ones) and clutter in look-alike
// colours, 15-40% of each decisive object hidden by occluders, look-alike
// safe objects (dark tools with the same specular band, a drill's black grip,
// people in short or beige clothes) and a third of the weapons in matte tan.
// Occluders never hide more than 30% of an unclothed figure's torso (its
// `core`), so a covered figure does not turn into a clothed-looking one.
// Safe scenes get the same occluders so that "something is covered" is no cue.
import type { Rng } from "../rng.js";
import { CALM_BACKGROUND_KINDS, drawBackground } from "./background.js";
import { anyColor, calmColor, calmOk, clothColor, gunColor, safeColor, skinTone } from "./color.js";
import { clothedFigure, nudeFigure } from "./figures.js";
import { HARD_TOOLS, HARD_WEAPONS, type ObjectModel, TOOLS, WEAPONS } from "./objects.js";
import { type Affine, apply, Canvas, type Contour, ellipse, Mask, overlapArea, placement, type Paint, rasterize, rect, type RGB, transformShape, unionInto } from "./raster.js";

export interface SceneSpec {
  /** Subset of ["nudity", "weapons"]; empty = safe. */
  labels: readonly string[];
  hard: boolean;
  /** Width = height in pixels. */
  size: number;
}

export interface SceneResult {
  /** size * size * 3 RGB bytes. */
  pixels: Uint8Array;
  /** Names of the objects drawn, decisive ones first (e.g. ["pistol", "hammer"]). */
  objects: string[];
  /** Share of the image covered by the decisive objects (or a safe scene's main object) before occlusion. */
  subjectArea: number;
  /** Largest share of one of those objects hidden by an occluder (0 when none was placed). */
  hidden: number;
}

interface Placed {
  model: ObjectModel;
  /** Decides a label (weapon / unclothed figure); gets the occlusion treatment. */
  decisive: boolean;
  m: Affine;
  mask?: Mask;
}

function pickFrom(rng: Rng, table: Record<string, (r: Rng) => ObjectModel>): ObjectModel {
  return table[rng.pick(Object.keys(table))](rng);
}

/** Chooses the objects of a scene for its label set. */
function chooseObjects(spec: SceneSpec, rng: Rng): { model: ObjectModel; decisive: boolean }[] {
  const out: { model: ObjectModel; decisive: boolean }[] = [];
  const weapons = spec.labels.includes("weapons");
  const nudity = spec.labels.includes("nudity");
  const safeItem = () => {
    if (rng.chance(0.45)) return clothedFigure(rng, { allowShort: spec.hard || rng.chance(0.3), allowDark: spec.hard, beigeChance: spec.hard ? 0.3 : 0 });
    return spec.hard && rng.chance(0.6) ? pickFrom(rng, HARD_TOOLS) : pickFrom(rng, TOOLS);
  };
  if (nudity) out.push({ model: nudeFigure(rng), decisive: true });
  if (weapons) out.push({ model: pickFrom(rng, spec.hard ? HARD_WEAPONS : WEAPONS), decisive: true });
  if (out.length === 0) {
    // Safe: one or two look-alikes, or (rarely) nothing but clutter.
    if (!rng.chance(0.08)) {
      out.push({ model: safeItem(), decisive: false });
      if (rng.chance(0.25)) out.push({ model: safeItem(), decisive: false });
    }
  } else if (out.length === 1 && rng.chance(spec.hard ? 0.3 : 0.15)) {
    out.push({ model: safeItem(), decisive: false });
  }
  return rng.shuffle(out);
}

/** Object-space bounding box corners mapped through m: [x0, y0, x1, y1] on the canvas. */
function placedBox(model: ObjectModel, m: Affine): [number, number, number, number] {
  const [x0, y0, x1, y1] = model.bounds;
  const pts = [apply(m, [x0, y0]), apply(m, [x1, y0]), apply(m, [x1, y1]), apply(m, [x0, y1])];
  return [Math.min(...pts.map((p) => p[0])), Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[1]))];
}

/** Places n objects side by side, each scaled so its longest side is `frac` of its slot. */
function layout(objs: { model: ObjectModel }[], spec: SceneSpec, rng: Rng): Affine[] {
  const S = spec.size;
  const n = objs.length;
  return objs.map(({ model }, k) => {
    const slotW = S / n;
    // Figures are thin for their height, so they get a larger share of the image.
    const grow = model.kind === "figure" ? 1.1 : 1;
    // A lone figure in the normal subset is half the time framed closer, as a
    // photo would be: head at the top, cut off between the hips and the knees.
    const closeUp = !spec.hard && n === 1 && model.kind === "figure" && rng.chance(0.5);
    const frac = closeUp ? rng.uniform(1.15, 1.45) : Math.min(0.95, grow * (spec.hard ? rng.uniform(0.26, 0.46) : n > 1 ? rng.uniform(0.45, 0.6) : rng.uniform(0.6, 0.9)));
    const [bx0, by0, bx1, by1] = model.bounds;
    const angle = model.upright ? rng.uniform(-0.2, 0.2) : rng.uniform(-Math.PI / 4, Math.PI / 4);
    const mirror = !model.upright && rng.chance(0.5) ? -1 : 1;
    // Scale: the longest side of the rotated box is frac of the image side.
    const unit = placedBox(model, placement(0, 0, angle, 1));
    const longest = Math.max(unit[2] - unit[0], unit[3] - unit[1]);
    const sc = (frac * S) / longest;
    const sx = sc * mirror;
    // Centre: inside the slot (or anywhere when hard), then nudged to keep the box on the canvas.
    const cxObj = (bx0 + bx1) / 2;
    const cyObj = (by0 + by1) / 2;
    let cx = spec.hard && n === 1 ? rng.uniform(0.2, 0.8) * S : slotW * (k + 0.5) + rng.uniform(-0.1, 0.1) * slotW;
    let cy = rng.uniform(0.35, 0.65) * S;
    let m = placement(0, 0, angle, sx, sc);
    const c = apply(m, [cxObj, cyObj]);
    if (closeUp) {
      // centred horizontally, the top of the box just inside the top edge
      const top = placedBox(model, placement(cx - c[0], cy - c[1], angle, sx, sc))[1];
      return placement(S / 2 + rng.uniform(-0.08, 0.08) * S - c[0], cy - c[1] + S * rng.uniform(0.02, 0.06) - top, angle, sx, sc);
    }
    m = placement(cx - c[0], cy - c[1], angle, sx, sc);
    const [x0, y0, x1, y1] = placedBox(model, m);
    const margin = S * 0.02;
    let dx = 0;
    let dy = 0;
    if (x1 - x0 < S - 2 * margin) dx = x0 < margin ? margin - x0 : x1 > S - margin ? S - margin - x1 : 0;
    if (y1 - y0 < S - 2 * margin) dy = y0 < margin ? margin - y0 : y1 > S - margin ? S - margin - y1 : 0;
    cx += dx;
    cy += dy;
    return placement(cx - c[0], cy - c[1], angle, sx, sc);
  });
}

/** Draws a placed object's parts; returns the union of their coverage. */
function drawObject(canvas: Canvas, p: Placed): Mask {
  const union = new Mask(canvas.w, canvas.h);
  for (const part of p.model.parts) {
    const mask = rasterize(transformShape(p.m, part.shape), canvas.w, canvas.h);
    const paint: Paint = "color" in part.paint ? { kind: "solid", color: part.paint.color } : { kind: "linear", c0: part.paint.c0, c1: part.paint.c1, p0: apply(p.m, part.paint.from), p1: apply(p.m, part.paint.to) };
    canvas.fill(mask, paint);
    unionInto(union, mask);
  }
  return union;
}

/** A random blob: rectangle, ellipse, triangle or irregular polygon. */
function randomBlob(rng: Rng, cx: number, cy: number, r: number): Contour {
  const kind = rng.int(0, 3);
  const ang = rng.uniform(0, Math.PI);
  const rot = (pts: Contour): Contour => pts.map(([x, y]) => [cx + x * Math.cos(ang) - y * Math.sin(ang), cy + x * Math.sin(ang) + y * Math.cos(ang)]);
  if (kind === 0) return rot(rect(-r, -r * rng.uniform(0.3, 1), r, r * rng.uniform(0.3, 1)));
  if (kind === 1) return rot(ellipse(0, 0, r, r * rng.uniform(0.4, 1), 20));
  const n = kind === 2 ? 3 : rng.int(5, 8);
  const pts: Contour = [];
  for (let k = 0; k < n; k++) {
    const t = (2 * Math.PI * k) / n + rng.uniform(-0.3, 0.3);
    const rr = r * rng.uniform(0.6, 1);
    pts.push([rr * Math.cos(t), rr * Math.sin(t)]);
  }
  return rot(pts);
}

/** Background clutter: a few flat shapes, partly transparent, coloured by `color`. */
function drawClutter(canvas: Canvas, rng: Rng, count: number, maxR: number, color: (rng: Rng) => RGB): void {
  for (let k = 0; k < count; k++) {
    const blob = randomBlob(rng, rng.uniform(0, canvas.w), rng.uniform(0, canvas.h), rng.uniform(0.04, maxR) * canvas.w);
    canvas.fill(rasterize({ solids: [blob] }, canvas.w, canvas.h), { kind: "solid", color: color(rng) }, rng.uniform(0.5, 1));
  }
}

/** Hard-subset colours for backgrounds and clutter: any colour, with skin tones and gunmetal mixed in. */
function lookalikeColor(rng: Rng): RGB {
  const u = rng.next();
  return u < 0.2 ? skinTone(rng) : u < 0.35 ? gunColor(rng) : anyColor(rng);
}

/**
 * Hides part of an object behind an occluding shape whose covered share of
 * the object lies in [lo, hi]; tries a few random shapes near the object and
 * keeps the first that fits (none if none does).
 */
function occlude(canvas: Canvas, rng: Rng, target: Mask, lo: number, hi: number, avoid: readonly Mask[], core: Mask | undefined, allowDark: boolean): number {
  const area = target.area();
  if (area <= 0) return 0;
  const bw = target.x1 - target.x0;
  const bh = target.y1 - target.y0;
  for (let tries = 0; tries < 12; tries++) {
    // a shape centred near the object's box edge or inside it
    const cx = target.x0 + rng.uniform(-0.1, 1.1) * bw;
    const cy = target.y0 + rng.uniform(-0.1, 1.1) * bh;
    const r = rng.uniform(0.15, 0.5) * Math.max(bw, bh);
    const mask = rasterize({ solids: [randomBlob(rng, cx, cy, r)] }, canvas.w, canvas.h);
    const frac = overlapArea(target, mask) / area;
    if (frac < lo || frac > hi) continue;
    // an unclothed figure must keep most of its torso in view, or it would read as clothed
    if (core !== undefined && overlapArea(core, mask) / Math.max(1e-6, core.area()) > 0.3) continue;
    // do not bury another decisive object beyond the same limit
    if (avoid.some((o) => o !== target && overlapArea(o, mask) / Math.max(1e-6, o.area()) > hi)) continue;
    const color: RGB = clothColor(rng, allowDark);
    canvas.fill(mask, { kind: "solid", color });
    return frac;
  }
  return 0;
}

/** Renders one scene deterministically from `rng`. */
export function renderScene(spec: SceneSpec, rng: Rng): SceneResult {
  const S = spec.size;
  const canvas = new Canvas(S, S);
  const chosen = chooseObjects(spec, rng);
  const transforms = layout(chosen, spec, rng);
  const placed: Placed[] = chosen.map((c, k) => ({ ...c, m: transforms[k] }));

  drawBackground(canvas, rng, {
    avoid: placed.map((p) => p.model.mainColor),
    minGap: spec.hard ? 0.1 : 0.3,
    busy: spec.hard ? rng.uniform(0.3, 1) : rng.uniform(0, 0.3),
    palette: spec.hard ? (rng.chance(0.3) ? lookalikeColor : safeColor) : calmColor,
    kinds: spec.hard ? undefined : CALM_BACKGROUND_KINDS,
    accept: spec.hard ? undefined : calmOk,
  });
  if (spec.hard) drawClutter(canvas, rng, rng.int(1, 4), 0.2, lookalikeColor);
  else drawClutter(canvas, rng, rng.int(0, 2), 0.1, safeColor);
  for (const p of placed) p.mask = drawObject(canvas, p);

  // Occlusion: the decisive objects (or, in a safe scene, its main look-alike).
  const masks = placed.map((p) => p.mask!);
  const targets = placed.some((p) => p.decisive) ? placed.filter((p) => p.decisive) : placed.slice(0, 1);
  let hidden = 0;
  const subject = new Mask(S, S);
  for (const t of targets) {
    unionInto(subject, t.mask!);
    const core = t.model.core ? rasterize(transformShape(t.m, t.model.core), S, S) : undefined;
    if (spec.hard) {
      hidden = Math.max(hidden, occlude(canvas, rng, t.mask!, 0.15, 0.4, masks, core, true));
    } else if (rng.chance(0.3)) {
      hidden = Math.max(hidden, occlude(canvas, rng, t.mask!, 0.02, 0.15, masks, core, false));
    }
  }

  // Sensor-like grey noise. (The sum of two uniforms is a cheap bell-shaped
  // stand-in for a normal; scaled by sqrt(6) its standard deviation is 1.)
  const sigma = spec.hard ? rng.uniform(0.02, 0.06) : rng.uniform(0, 0.03);
  if (sigma > 0) {
    const d = canvas.data;
    const k6 = sigma * Math.sqrt(6);
    for (let k = 0; k < d.length; k += 3) {
      const n = k6 * (rng.next() + rng.next() - 1);
      d[k] += n;
      d[k + 1] += n;
      d[k + 2] += n;
    }
  }
  const decisiveFirst = [...placed.filter((p) => p.decisive), ...placed.filter((p) => !p.decisive)];
  return { pixels: canvas.toBytes(), objects: decisiveFirst.map((p) => p.model.name), subjectArea: subject.area() / (S * S), hidden };
}
