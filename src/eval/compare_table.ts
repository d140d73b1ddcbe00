// The run-comparison table, as aligned plain text for the terminal (the HTML
// report uses the same columns). Recall comes first: it is the headline.
import type { Curves } from "./curves.js";
import type { EvalMetrics } from "./metrics.js";

/** A named evaluation result. */
export interface CompareRun {
  name: string;
  metrics: EvalMetrics;
  curves?: Curves | null;
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
export function formatMetric(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined || Number.isNaN(v) ? "n/a" : v.toFixed(digits);
}

/** Columns for these runs: the fixed ones, plus AUC/AP if any run has curves. */
export function columnsFor(runs: CompareRun[]): CompareColumn[] {
  return runs.some((r) => r.curves) ? [...COMPARE_COLUMNS, ...CURVE_COLUMNS] : COMPARE_COLUMNS;
}

/**
 * An aligned text table, one row per run in the given order:
 *
 *   run       recall  precision    fpr     f1     f2  accuracy  unparseable
 *   base       0.600      0.750  0.100  0.667  0.625     0.800        0.050
 */
export function formatCompareTable(runs: CompareRun[], opts: { digits?: number } = {}): string {
  const cols = columnsFor(runs);
  const header = ["run", ...cols.map((c) => c.header)];
  const rows = runs.map((r) => [r.name, ...cols.map((c) => formatMetric(c.value(r), opts.digits ?? 3))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const fmt = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ").trimEnd();
  return [fmt(header), ...rows.map(fmt)].join("\n") + "\n";
}
