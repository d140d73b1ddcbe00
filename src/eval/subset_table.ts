// The price of recall split by the manifest's `hard` flag (the synthetic set
// marks its look-alikes and small, partly hidden objects with it; a real
// manifest may mark whatever it calls hard): for each evaluated model, the
// offensive images caught and the false alarms raised on the normal images and
// on the hard ones, with the same answer rule and unparseable policy as the
// whole split's metrics.
import type { Example } from "../data/types.js";
import { alignedLines, formatMetric } from "./compare_table.js";
import { computeMetrics, type EvalMetrics, type Prediction } from "./metrics.js";

export type Subset = "normal" | "hard";

export interface SubsetRow {
  run: string;
  subset: Subset;
  /** Offensive images of the subset, and how many the model flagged. */
  offensive: number;
  caught: number;
  safe: number;
  /** Null when the subset has no offensive (recall) or no safe (fpr) image. */
  recall: number | null;
  fpr: number | null;
}

export interface SubsetRun {
  name: string;
  /** The model's predictions, matched to the examples by id. */
  predictions: Prediction[];
  /** The whole split's metrics: their categories and unparseable policy are reused. */
  metrics: EvalMetrics;
}

/** Rows per run and subset; null when no example is marked hard (nothing to split). */
export function subsetRows(runs: SubsetRun[], examples: readonly Example[]): SubsetRow[] | null {
  if (!examples.some((e) => e.hard === true)) return null;
  const hardById = new Map(examples.map((e) => [e.id, e.hard === true]));
  const rows: SubsetRow[] = [];
  for (const run of runs) {
    const isHard = run.predictions.map((p) => {
      const h = hardById.get(p.id);
      if (h === undefined) throw new Error(`subsetRows: run '${run.name}' has a prediction for id '${p.id}', which is not among the ${examples.length} evaluated examples`);
      return h;
    });
    for (const subset of ["normal", "hard"] as const) {
      const preds = run.predictions.filter((_, i) => isHard[i] === (subset === "hard"));
      const m = computeMetrics(preds, { categories: run.metrics.categories, unparseableAs: run.metrics.unparseable_as });
      rows.push({ run: run.name, subset, offensive: m.positives, caught: m.confusion.tp, safe: m.negatives, recall: m.recall, fpr: m.fpr });
    }
  }
  return rows;
}

/**
 * Aligned for a terminal:
 *
 *   run   subset  caught  recall  safe    fpr  false alarms / 1,000 safe
 *   sft   normal  139/144  0.965   336  0.015                         15
 *   sft   hard      12/35  0.343    84  0.190                        190
 */
export function formatSubsetTable(rows: SubsetRow[]): string {
  const header = ["run", "subset", "caught", "recall", "safe", "fpr", "false alarms / 1,000 safe"];
  const cells = rows.map((r) => [r.run, r.subset, `${r.caught}/${r.offensive}`, formatMetric(r.recall), String(r.safe), formatMetric(r.fpr), r.fpr === null ? "n/a" : (r.fpr * 1000).toFixed(0)]);
  return alignedLines(header, cells, 2).join("\n") + "\n";
}
