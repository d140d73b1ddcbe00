// Tiny inline-SVG line charts for the HTML report: axes with "nice" ticks,
// one polyline per series, a legend below the plot. No dependencies; every
// piece of text is escaped. Used for PR/ROC curves and training curves
// (loss, reward) alike.

/** Escapes text for HTML/SVG element content and attribute values. */
export function escapeHtml(s: string): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);
}

/** Default series colours (colour-blind-safe Okabe-Ito order). */
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"];

/** One line of a chart. Non-finite y (or x) values break the line. */
export interface Series {
  name: string;
  points: [number, number][];
  /** CSS colour. Default: PALETTE by index. */
  color?: string;
  dashed?: boolean;
}

/** Options of {@link lineChartSvg}. */
export interface ChartOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Outer width in px. Default 420. */
  width?: number;
  /** Plot-area height in px (the legend adds below). Default 300. */
  height?: number;
  /** Fixed x range; default: the data's, widened to nice ticks. */
  xDomain?: [number, number];
  yDomain?: [number, number];
  /** Draw the dashed y = x reference line (ROC). Default false. */
  diagonal?: boolean;
  /** Series with more points are thinned to about this many (stride, last kept). Default 2000. */
  maxPoints?: number;
}

/** About `count` round tick values (steps of 1, 2 or 5 x 10^k) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) as number;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Short tick label: up to 4 significant digits, exponent form for very large/small values. */
export function formatTick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

function domainOf(values: number[], fixed?: [number, number]): [number, number] {
  if (fixed) return fixed;
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [0, 1];
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of finite) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const ticks = niceTicks(lo, hi);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : hi - lo;
  return [Number((Math.floor(lo / step + 1e-9) * step).toPrecision(12)), Number((Math.ceil(hi / step - 1e-9) * step).toPrecision(12))];
}

const r2 = (v: number) => Math.round(v * 100) / 100;

function thin(points: [number, number][], max: number): [number, number][] {
  if (points.length <= max) return points;
  const stride = Math.ceil(points.length / max);
  const out = points.filter((_, i) => i % stride === 0);
  if (out[out.length - 1] !== points[points.length - 1]) out.push(points[points.length - 1]);
  return out;
}

/** Renders a line chart as a standalone `<svg>` element string. */
export function lineChartSvg(series: Series[], opts: ChartOptions = {}): string {
  const W = opts.width ?? 420;
  const plotH = opts.height ?? 300;
  const m = { left: 56, right: 14, top: opts.title ? 28 : 12, bottom: 44 };
  const legendRows = series.length;
  const H = m.top + plotH + m.bottom + legendRows * 16;
  const pw = W - m.left - m.right;
  const ph = plotH;
  const all = series.flatMap((s) => s.points);
  const [x0, x1] = domainOf(all.map((p) => p[0]), opts.xDomain);
  const [y0, y1] = domainOf(all.map((p) => p[1]), opts.yDomain);
  const sx = (x: number) => r2(m.left + ((x - x0) / (x1 - x0 || 1)) * pw);
  const sy = (y: number) => r2(m.top + ph - ((y - y0) / (y1 - y0 || 1)) * ph);

  const out: string[] = [];
  const label = opts.title ?? series.map((s) => s.name).join(", ");
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(label)}" font-family="sans-serif" font-size="11">`);
  if (opts.title) out.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeHtml(opts.title)}</text>`);
  // grid + ticks
  for (const t of niceTicks(x0, x1)) {
    if (t < x0 - 1e-12 || t > x1 + 1e-12) continue;
    out.push(`<line x1="${sx(t)}" y1="${m.top}" x2="${sx(t)}" y2="${m.top + ph}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${sx(t)}" y="${m.top + ph + 14}" text-anchor="middle">${escapeHtml(formatTick(t))}</text>`);
  }
  for (const t of niceTicks(y0, y1)) {
    if (t < y0 - 1e-12 || t > y1 + 1e-12) continue;
    out.push(`<line x1="${m.left}" y1="${sy(t)}" x2="${m.left + pw}" y2="${sy(t)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 5}" y="${sy(t) + 4}" text-anchor="end">${escapeHtml(formatTick(t))}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  if (opts.xLabel) out.push(`<text x="${m.left + pw / 2}" y="${m.top + ph + 32}" text-anchor="middle">${escapeHtml(opts.xLabel)}</text>`);
  if (opts.yLabel) {
    const cy = m.top + ph / 2;
    out.push(`<text x="14" y="${cy}" text-anchor="middle" transform="rotate(-90 14 ${cy})">${escapeHtml(opts.yLabel)}</text>`);
  }
  if (opts.diagonal) {
    const lo = Math.max(x0, y0);
    const hi = Math.min(x1, y1);
    if (hi > lo) out.push(`<line x1="${sx(lo)}" y1="${sy(lo)}" x2="${sx(hi)}" y2="${sy(hi)}" stroke="#999" stroke-dasharray="4 4"/>`);
  }
  // series
  series.forEach((s, i) => {
    const color = escapeHtml(s.color ?? PALETTE[i % PALETTE.length]);
    const dash = s.dashed ? ` stroke-dasharray="6 3"` : "";
    const segs: string[][] = [[]];
    for (const [x, y] of thin(s.points, opts.maxPoints ?? 2000)) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        if (segs[segs.length - 1].length > 0) segs.push([]);
        continue;
      }
      segs[segs.length - 1].push(`${sx(x)},${sy(y)}`);
    }
    for (const seg of segs) {
      if (seg.length === 1) out.push(`<circle cx="${seg[0].split(",")[0]}" cy="${seg[0].split(",")[1]}" r="2" fill="${color}"/>`);
      else if (seg.length > 1) out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.8"${dash} points="${seg.join(" ")}"><title>${escapeHtml(s.name)}</title></polyline>`);
    }
    const ly = m.top + ph + m.bottom + i * 16 + 4;
    out.push(`<line x1="${m.left}" y1="${ly}" x2="${m.left + 22}" y2="${ly}" stroke="${color}" stroke-width="2.5"${dash}/>`);
    out.push(`<text x="${m.left + 28}" y="${ly + 4}">${escapeHtml(s.name)}</text>`);
  });
  out.push(`</svg>`);
  return out.join("\n");
}
