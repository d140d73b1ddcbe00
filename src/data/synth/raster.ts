// A small anti-aliased rasterizer for the synthetic demo set: polygons (with
// holes) on a float RGB canvas.
//
// Coverage: each pixel row is sampled by SUBROWS horizontal scanlines; on each
// scanline the polygon's spans (nonzero winding) are found exactly and their
// horizontal overlap with every pixel is added, so edges get 1/SUBROWS
// vertical and exact horizontal anti-aliasing. A shape is a union of solid
// contours minus a union of hole contours (coverage = solids * (1 - holes)),
// so contour orientation never matters. Curves are polygons (ellipse() etc.).
// Shapes are built in an object's own coordinates and placed with an affine
// transform (scale, rotation, mirror, translation).

export type Vec = [number, number];
/** A closed polygon (the last point joins the first). */
export type Contour = Vec[];
/** Solids minus holes. */
export interface Shape {
  solids: Contour[];
  holes?: Contour[];
}
export type RGB = [number, number, number];

/** Vertical samples per pixel row. */
const SUBROWS = 5;

/** Affine map (x, y) -> (a x + c y + e, b x + d y + f). */
export type Affine = [number, number, number, number, number, number];

export const IDENTITY: Affine = [1, 0, 0, 1, 0, 0];

/** m2 after m1 (apply m1 first). */
export function compose(m2: Affine, m1: Affine): Affine {
  const [a2, b2, c2, d2, e2, f2] = m2;
  const [a1, b1, c1, d1, e1, f1] = m1;
  return [a2 * a1 + c2 * b1, b2 * a1 + d2 * b1, a2 * c1 + c2 * d1, b2 * c1 + d2 * d1, a2 * e1 + c2 * f1 + e2, b2 * e1 + d2 * f1 + f2];
}

/** Scale (sx, sy), then rotate by `angle` radians (clockwise on screen, y down), then translate to (tx, ty). */
export function placement(tx: number, ty: number, angle: number, sx: number, sy = sx): Affine {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  return [c * sx, s * sx, -s * sy, c * sy, tx, ty];
}

export function apply(m: Affine, p: Vec): Vec {
  return [m[0] * p[0] + m[2] * p[1] + m[4], m[1] * p[0] + m[3] * p[1] + m[5]];
}

export function transformShape(m: Affine, s: Shape): Shape {
  const t = (c: Contour) => c.map((p) => apply(m, p));
  return { solids: s.solids.map(t), holes: s.holes?.map(t) };
}

// ---- primitives (object coordinates) -----------------------------------------------------

export function rect(x0: number, y0: number, x1: number, y1: number): Contour {
  return [
    [x0, y0],
    [x1, y0],
    [x1, y1],
    [x0, y1],
  ];
}

/** An ellipse (or an arc's pie when start/end are given) as a polygon of `segs` points. */
export function ellipse(cx: number, cy: number, rx: number, ry = rx, segs = 28, start = 0, end = 2 * Math.PI): Contour {
  const pts: Contour = [];
  const full = Math.abs(end - start - 2 * Math.PI) < 1e-9;
  const n = full ? segs : segs + 1;
  for (let k = 0; k < n; k++) {
    const t = start + ((end - start) * k) / segs;
    pts.push([cx + rx * Math.cos(t), cy + ry * Math.sin(t)]);
  }
  if (!full) pts.push([cx, cy]);
  return pts;
}

/** A rectangle with rounded corners of radius r. */
export function roundRect(x0: number, y0: number, x1: number, y1: number, r: number, segsPerCorner = 4): Contour {
  r = Math.min(r, (x1 - x0) / 2, (y1 - y0) / 2);
  const pts: Contour = [];
  const corner = (cx: number, cy: number, a0: number) => {
    for (let k = 0; k <= segsPerCorner; k++) {
      const t = a0 + (Math.PI / 2) * (k / segsPerCorner);
      pts.push([cx + r * Math.cos(t), cy + r * Math.sin(t)]);
    }
  };
  corner(x1 - r, y0 + r, -Math.PI / 2);
  corner(x1 - r, y1 - r, 0);
  corner(x0 + r, y1 - r, Math.PI / 2);
  corner(x0 + r, y0 + r, Math.PI);
  return pts;
}

/** A segment from p to q with half-width r and round ends (a limb, a handle). */
export function capsule(p: Vec, q: Vec, r: number, segs = 8): Contour {
  const ang = Math.atan2(q[1] - p[1], q[0] - p[0]);
  const pts: Contour = [];
  for (let k = 0; k <= segs; k++) {
    const t = ang - Math.PI / 2 + (Math.PI * k) / segs;
    pts.push([q[0] + r * Math.cos(t), q[1] + r * Math.sin(t)]);
  }
  for (let k = 0; k <= segs; k++) {
    const t = ang + Math.PI / 2 + (Math.PI * k) / segs;
    pts.push([p[0] + r * Math.cos(t), p[1] + r * Math.sin(t)]);
  }
  return pts;
}

/** A tapered segment: half-width r0 at p, r1 at q, round ends. */
export function taper(p: Vec, q: Vec, r0: number, r1: number, segs = 8): Contour {
  const ang = Math.atan2(q[1] - p[1], q[0] - p[0]);
  const pts: Contour = [];
  for (let k = 0; k <= segs; k++) {
    const t = ang - Math.PI / 2 + (Math.PI * k) / segs;
    pts.push([q[0] + r1 * Math.cos(t), q[1] + r1 * Math.sin(t)]);
  }
  for (let k = 0; k <= segs; k++) {
    const t = ang + Math.PI / 2 + (Math.PI * k) / segs;
    pts.push([p[0] + r0 * Math.cos(t), p[1] + r0 * Math.sin(t)]);
  }
  return pts;
}

/** A thick open polyline as capsules (one per segment; the union fills the joints). */
export function stroke(points: Vec[], r: number): Contour[] {
  const out: Contour[] = [];
  for (let k = 0; k + 1 < points.length; k++) out.push(capsule(points[k], points[k + 1], r, 6));
  return out;
}

export const shape = (solids: Contour[], holes?: Contour[]): Shape => (holes ? { solids, holes } : { solids });

// ---- coverage ----------------------------------------------------------------------------

/** Per-pixel coverage in [0, 1] over a w x h grid, with the bounding rows/cols that may be non-zero. */
export class Mask {
  readonly data: Float32Array;
  x0 = 0;
  y0 = 0;
  x1 = 0; // exclusive
  y1 = 0; // exclusive
  constructor(
    readonly w: number,
    readonly h: number,
  ) {
    this.data = new Float32Array(w * h);
  }
  /** Sum of coverage (area in pixels). */
  area(): number {
    let s = 0;
    for (let y = this.y0; y < this.y1; y++) for (let x = this.x0; x < this.x1; x++) s += this.data[y * this.w + x];
    return s;
  }
}

/** Coverage of the union of the contours (nonzero winding over all of them). */
function coverUnion(contours: Contour[], w: number, h: number): Mask {
  const m = new Mask(w, h);
  // Flatten the edges: x0, y0, x1, y1, winding.
  let count = 0;
  for (const c of contours) count += c.length;
  const ex = new Float64Array(count * 5);
  let ne = 0;
  let ymin = Infinity;
  let ymax = -Infinity;
  let xmin = Infinity;
  let xmax = -Infinity;
  for (const c of contours) {
    // Orient every contour the same way (positive signed area), so that
    // overlapping contours add up instead of cancelling under nonzero winding.
    let signed = 0;
    for (let k = 0; k < c.length; k++) {
      const p = c[k];
      const q = c[(k + 1) % c.length];
      signed += p[0] * q[1] - q[0] * p[1];
    }
    const orient = signed < 0 ? -1 : 1;
    for (let k = 0; k < c.length; k++) {
      const p = c[k];
      const q = c[(k + 1) % c.length];
      xmin = Math.min(xmin, p[0]);
      xmax = Math.max(xmax, p[0]);
      ymin = Math.min(ymin, p[1]);
      ymax = Math.max(ymax, p[1]);
      if (p[1] === q[1]) continue;
      const o = ne * 5;
      if (p[1] < q[1]) {
        ex[o] = p[0];
        ex[o + 1] = p[1];
        ex[o + 2] = q[0];
        ex[o + 3] = q[1];
        ex[o + 4] = orient;
      } else {
        ex[o] = q[0];
        ex[o + 1] = q[1];
        ex[o + 2] = p[0];
        ex[o + 3] = p[1];
        ex[o + 4] = -orient;
      }
      ne++;
    }
  }
  const ry0 = Math.max(0, Math.floor(ymin));
  const ry1 = Math.min(h, Math.ceil(ymax));
  m.y0 = ry0;
  m.y1 = Math.max(ry0, ry1);
  m.x0 = Math.max(0, Math.floor(xmin));
  m.x1 = Math.max(m.x0, Math.min(w, Math.ceil(xmax) + 1));
  const xs: number[] = [];
  const ws: number[] = [];
  const order: number[] = [];
  const weight = 1 / SUBROWS;
  const d = m.data;
  // Active edge list: edges sorted by their top; per pixel row, only edges spanning it are scanned.
  const byTop = Array.from({ length: ne }, (_, k) => k).sort((a, b) => ex[a * 5 + 1] - ex[b * 5 + 1]);
  let nextEdge = 0;
  let active: number[] = [];
  for (let y = ry0; y < ry1; y++) {
    const row = y * w;
    while (nextEdge < ne && ex[byTop[nextEdge] * 5 + 1] < y + 1) active.push(byTop[nextEdge++]);
    active = active.filter((k) => ex[k * 5 + 3] > y);
    for (let s = 0; s < SUBROWS; s++) {
      const sy = y + (s + 0.5) / SUBROWS;
      xs.length = 0;
      ws.length = 0;
      for (const k of active) {
        const o = k * 5;
        const y0 = ex[o + 1];
        const y1 = ex[o + 3];
        if (sy < y0 || sy >= y1) continue;
        xs.push(ex[o] + ((sy - y0) * (ex[o + 2] - ex[o])) / (y1 - y0));
        ws.push(ex[o + 4]);
      }
      if (xs.length < 2) continue;
      order.length = 0;
      for (let k = 0; k < xs.length; k++) order.push(k);
      order.sort((a, b) => xs[a] - xs[b]);
      let wind = 0;
      for (let k = 0; k < order.length; k++) {
        const before = wind;
        wind += ws[order[k]];
        if (before === 0 && wind !== 0) {
          // span opens at xs[order[k]]; find where winding returns to 0
          let j = k + 1;
          let w2 = wind;
          while (j < order.length) {
            w2 += ws[order[j]];
            if (w2 === 0) break;
            j++;
          }
          const xa = Math.max(0, xs[order[k]]);
          const xb = Math.min(w, j < order.length ? xs[order[j]] : w);
          if (xb > xa) {
            const ia = Math.floor(xa);
            const ib = Math.floor(xb);
            if (ia === ib) d[row + ia] += (xb - xa) * weight;
            else {
              d[row + ia] += (ia + 1 - xa) * weight;
              for (let i = ia + 1; i < ib; i++) d[row + i] += weight;
              if (ib < w) d[row + ib] += (xb - ib) * weight;
            }
          }
          wind = 0;
          k = j;
        }
      }
    }
  }
  for (let y = m.y0; y < m.y1; y++) for (let x = m.x0; x < m.x1; x++) if (d[y * w + x] > 1) d[y * w + x] = 1;
  return m;
}

/** Coverage of a shape (solids minus holes) on a w x h grid (canvas coordinates). */
export function rasterize(s: Shape, w: number, h: number): Mask {
  const m = coverUnion(s.solids, w, h);
  if (s.holes && s.holes.length > 0) {
    const hm = coverUnion(s.holes, w, h);
    for (let y = m.y0; y < m.y1; y++) for (let x = m.x0; x < m.x1; x++) m.data[y * w + x] *= 1 - hm.data[y * w + x];
  }
  return m;
}

/** Per-pixel max of b into a (a's bounds grow to include b's). */
export function unionInto(a: Mask, b: Mask): void {
  for (let y = b.y0; y < b.y1; y++)
    for (let x = b.x0; x < b.x1; x++) {
      const k = y * a.w + x;
      if (b.data[k] > a.data[k]) a.data[k] = b.data[k];
    }
  if (a.x1 === a.x0 || a.y1 === a.y0) {
    a.x0 = b.x0;
    a.x1 = b.x1;
    a.y0 = b.y0;
    a.y1 = b.y1;
  } else {
    a.x0 = Math.min(a.x0, b.x0);
    a.y0 = Math.min(a.y0, b.y0);
    a.x1 = Math.max(a.x1, b.x1);
    a.y1 = Math.max(a.y1, b.y1);
  }
}

/** Area of a covered by b: sum of a * b. */
export function overlapArea(a: Mask, b: Mask): number {
  let s = 0;
  const x0 = Math.max(a.x0, b.x0);
  const x1 = Math.min(a.x1, b.x1);
  const y0 = Math.max(a.y0, b.y0);
  const y1 = Math.min(a.y1, b.y1);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) s += a.data[y * a.w + x] * b.data[y * a.w + x];
  return s;
}

// ---- canvas ------------------------------------------------------------------------------

/** How a filled shape is coloured: flat, or a linear gradient between two canvas points. */
export type Paint = { kind: "solid"; color: RGB } | { kind: "linear"; c0: RGB; c1: RGB; p0: Vec; p1: Vec };

/** An RGB image with channels in [0, 1], row-major, interleaved. */
export class Canvas {
  readonly data: Float32Array;
  constructor(
    readonly w: number,
    readonly h: number,
  ) {
    this.data = new Float32Array(w * h * 3);
  }

  /** Blends `paint` over the canvas with the mask's coverage times `alpha`. */
  fill(mask: Mask, paint: Paint, alpha = 1): void {
    const d = this.data;
    const w = this.w;
    let gx = 0;
    let gy = 0;
    let g0 = 0;
    if (paint.kind === "linear") {
      const vx = paint.p1[0] - paint.p0[0];
      const vy = paint.p1[1] - paint.p0[1];
      const len2 = vx * vx + vy * vy || 1;
      gx = vx / len2;
      gy = vy / len2;
      g0 = -(paint.p0[0] * gx + paint.p0[1] * gy);
    }
    for (let y = mask.y0; y < mask.y1; y++) {
      for (let x = mask.x0; x < mask.x1; x++) {
        const cov = mask.data[y * w + x] * alpha;
        if (cov <= 0) continue;
        let r: number, g: number, b: number;
        if (paint.kind === "solid") {
          [r, g, b] = paint.color;
        } else {
          let t = (x + 0.5) * gx + (y + 0.5) * gy + g0;
          t = t < 0 ? 0 : t > 1 ? 1 : t;
          r = paint.c0[0] + (paint.c1[0] - paint.c0[0]) * t;
          g = paint.c0[1] + (paint.c1[1] - paint.c0[1]) * t;
          b = paint.c0[2] + (paint.c1[2] - paint.c0[2]) * t;
        }
        const o = 3 * (y * w + x);
        d[o] += (r - d[o]) * cov;
        d[o + 1] += (g - d[o + 1]) * cov;
        d[o + 2] += (b - d[o + 2]) * cov;
      }
    }
  }

  /** 8-bit RGB bytes (values clamped to [0, 1], rounded). */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.data.length);
    for (let k = 0; k < this.data.length; k++) {
      const v = this.data[k];
      out[k] = v <= 0 ? 0 : v >= 1 ? 255 : (v * 255 + 0.5) | 0;
    }
    return out;
  }
}
