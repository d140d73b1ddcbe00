// The run-comparison table, as aligned plain text for the terminal (the HTML
// report uses the same columns). Recall comes first: it is the headline.
import type { Curves } from "./curves.js";
import type { RatesWithIntervals } from "./intervals.js";
import type { EvalMetrics } from "./metrics.js";

/** A named evaluation result. */
export interface CompareRun {
  name: string;
  metrics: EvalMetrics;
  curves?: Curves | null;
  /** Wilson intervals on recall and FPR, and the few-images warnings. */
  intervals?: RatesWithIntervals;
}

/** One column of the comparison table. */
export interface CompareColumn {
  header: string;
  value: (r: CompareRun) => number | null | undefined;
}

/** The columns, in order: recall, precision, fpr, f1, f2, accuracy, unparseable (rate). */
export const COMPARE_COLUMNS: CompareColumn[] = [
  { header: "recall", value: (r) => r.metrics.recall },
  { header: "precision", value: (r) => r.metrics.precision },
  { header: "fpr", value: (r) => r.metrics.fpr },
  { header: "f1", value: (r) => r.metrics.f1 },
  { header: "f2", value: (r) => r.metrics.f2 },
  { header: "accuracy", value: (r) => r.metrics.accuracy },
  { header: "unparseable", value: (r) => r.metrics.unparseable_rate },
];

/** Extra columns shown when at least one run has scores: ROC AUC and average precision. */
export const CURVE_COLUMNS: CompareColumn[] = [
  { header: "roc_auc", value: (r) => r.curves?.roc_auc },
  { header: "ap", value: (r) => r.curves?.average_precision },
];

/** A ratio with `digits` decimals; "n/a" for null/undefined (0/0). */
/** A header and rows as aligned lines, two spaces apart: the first `leftColumns` columns padded on the right (names), the rest on the left (figures). */
export function alignedLines(header: string[], rows: string[][], leftColumns = 1): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const fmt = (row: string[]) => row.map((cell, i) => (i < leftColumns ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ").trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}

export function formatMetric(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined || Number.isNaN(v) ? "n/a" : v.toFixed(digits);
}

/** Columns for these runs: the fixed ones, plus AUC/AP if any run has curves. */
export function columnsFor(runs: CompareRun[]): CompareColumn[] {
  return runs.some((r) => r.curves) ? [...COMPARE_COLUMNS, ...CURVE_COLUMNS] : COMPARE_COLUMNS;
}

/** "[0.47, 0.75]", or "n/a". */
export function formatInterval(lo: number | null, hi: number | null): string {
  return lo === null || hi === null ? "n/a" : `[${lo.toFixed(2)}, ${hi.toFixed(2)}]`;
}

/**
 * An aligned text table, one row per run in the given order:
 *
 *   run       recall  precision    fpr     f1     f2  accuracy  unparseable
 *   base       0.600      0.750  0.100  0.667  0.625     0.800        0.050
 *
 * With intervals, two more columns give the Wilson 95% intervals of recall
 * and FPR, and each few-images warning follows as a line "! run: ...".
 */
export function formatCompareTable(runs: CompareRun[], opts: { digits?: number } = {}): string {
  const cols = columnsFor(runs);
  const withCi = runs.some((r) => r.intervals);
  const header = ["run", ...cols.map((c) => c.header), ...(withCi ? ["recall 95% CI", "fpr 95% CI"] : [])];
  const rows = runs.map((r) => [
    r.name,
    ...cols.map((c) => formatMetric(c.value(r), opts.digits ?? 3)),
    ...(withCi ? [r.intervals ? formatInterval(r.intervals.recall.lo, r.intervals.recall.hi) : "n/a", r.intervals ? formatInterval(r.intervals.fpr.lo, r.intervals.fpr.hi) : "n/a"] : []),
  ]);
  const warnings = runs.flatMap((r) => (r.intervals?.warnings ?? []).map((w) => `! ${r.name}: ${w}; its interval is wide`));
  return [...alignedLines(header, rows), ...warnings].join("\n") + "\n";
}
