// Confidence intervals for the rates a moderation team acts on (recall,
// false-positive rate), and the "rests on few images" warning.
//
// Wilson score interval (Wilson 1927; recommended over the normal
// approximation by Newcombe 1998 and Brown, Cai & DasGupta 2001): for x
// successes out of n at z (1.96 for 95%),
//   centre = (p + z^2/2n) / (1 + z^2/n),   half = z/(1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2)
// It stays inside [0, 1] and is not degenerate at x = 0 or x = n (0 of 10
// gives [0, 0.278], not [0, 0]), which matters for recall on a few dozen
// offensive images. Undefined (null) when n = 0.
import type { FigureWithInterval } from "../policy/thresholds.js";
import type { Confusion } from "./metrics.js";

/** The z of a two-sided 95% interval. */
export const Z95 = 1.959963984540054;

/** Wilson score interval of x successes in n trials; null when n = 0. */
export function wilsonInterval(x: number, n: number, z = Z95): { lo: number; hi: number } | null {
  if (!Number.isInteger(x) || !Number.isInteger(n) || x < 0 || n < 0 || x > n) throw new Error(`wilsonInterval: expected integers 0 <= x <= n, got x=${x}, n=${n}`);
  if (n === 0) return null;
  const p = x / n;
  const z2 = z * z;
  const d = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / d;
  const half = (z / d) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // At x = 0 (x = n) the bound is exactly 0 (1); rounding would leave it a hair off.
  return { lo: x === 0 ? 0 : Math.max(0, centre - half), hi: x === n ? 1 : Math.min(1, centre + half) };
}

/** x / n with its Wilson interval. */
export function rateWithInterval(x: number, n: number): FigureWithInterval {
  const ci = wilsonInterval(x, n);
  return { value: n === 0 ? null : x / n, lo: ci?.lo ?? null, hi: ci?.hi ?? null, count: x, of: n };
}

/** Recall and FPR of a 2x2 table with intervals, and whether either rests on fewer than `minSupport` images. */
export interface RatesWithIntervals {
  recall: FigureWithInterval;
  fpr: FigureWithInterval;
  /** Positives (for recall) or negatives (for FPR) below minSupport. */
  few_images: boolean;
  /** Human-readable warnings, e.g. "recall rests on 12 offensive images (< 30)". */
  warnings: string[];
}

/** Recall and FPR with Wilson intervals, and the few-images warnings. */
export function ratesWithIntervals(c: Confusion, minSupport: number): RatesWithIntervals {
  const recall = rateWithInterval(c.tp, c.tp + c.fn);
  const fpr = rateWithInterval(c.fp, c.fp + c.tn);
  const warnings: string[] = [];
  if (recall.of < minSupport) warnings.push(`recall rests on ${recall.of} offensive image${recall.of === 1 ? "" : "s"} (< ${minSupport})`);
  if (fpr.of < minSupport) warnings.push(`FPR rests on ${fpr.of} safe image${fpr.of === 1 ? "" : "s"} (< ${minSupport})`);
  return { recall, fpr, few_images: warnings.length > 0, warnings };
}

/** "0.617 [0.47, 0.75]"; "n/a" when undefined. */
export function formatWithInterval(f: FigureWithInterval, digits = 3): string {
  if (f.value === null) return "n/a";
  return `${f.value.toFixed(digits)} [${f.lo!.toFixed(2)}, ${f.hi!.toFixed(2)}]`;
}
