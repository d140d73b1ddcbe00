// What the recall costs, in the units a moderation team budgets with: for
// each evaluated model, the offensive images it catches and misses, and the
// false alarms it raises per 1,000 safe images (FPR x 1000), then one line per
// model against a baseline (e.g. GRPO against SFT): how many more offensive
// images out of 100 it catches and how many more false alarms per 1,000 safe
// images it raises for them.
import { alignedLines, formatMetric } from "./compare_table.js";
import type { EvalMetrics } from "./metrics.js";

export interface PriceRun {
  name: string;
  metrics: EvalMetrics;
  /** ROC AUC of the scores, if any. */
  rocAuc?: number | null;
}

/** False alarms per 1,000 safe images (null without safe images). */
export function falseAlarmsPer1000(m: EvalMetrics): number | null {
  return m.fpr === null ? null : m.fpr * 1000;
}

/**
 * The table, aligned for a terminal:
 *
 *   run    caught  missed  recall  false alarms / 1,000 safe  roc_auc
 *   sft    280/300     20   0.933                         43    0.981
 */
export function formatPriceTable(runs: PriceRun[]): string {
  const header = ["run", "caught", "missed", "recall", "fpr", "false alarms / 1,000 safe", "roc_auc"];
  const rows = runs.map((r) => {
    const c = r.metrics.confusion;
    const fa = falseAlarmsPer1000(r.metrics);
    return [r.name, `${c.tp}/${c.tp + c.fn}`, String(c.fn), formatMetric(r.metrics.recall), formatMetric(r.metrics.fpr), fa === null ? "n/a" : fa.toFixed(0), formatMetric(r.rocAuc)];
  });
  return alignedLines(header, rows).join("\n") + "\n";
}

/**
 * "grpo vs sft: catches 12 more of every 100 offensive images (recall 0.833 -> 0.953)
 *  for 61 more false alarms per 1,000 safe images (43 -> 104)". Null when a figure is undefined.
 */
export function priceSentence(run: PriceRun, baseline: PriceRun): string | null {
  const r1 = run.metrics.recall;
  const r0 = baseline.metrics.recall;
  const f1 = falseAlarmsPer1000(run.metrics);
  const f0 = falseAlarmsPer1000(baseline.metrics);
  if (r1 === null || r0 === null || f1 === null || f0 === null) return null;
  const dr = Math.round((r1 - r0) * 100);
  const df = Math.round(f1 - f0);
  const caught = dr >= 0 ? `catches ${dr} more` : `catches ${-dr} fewer`;
  const alarms = df >= 0 ? `${df} more` : `${-df} fewer`;
  return (
    `${run.name} vs ${baseline.name}: ${caught} of every 100 offensive images (recall ${r0.toFixed(3)} -> ${r1.toFixed(3)}) ` +
    `for ${alarms} false alarms per 1,000 safe images (${f0.toFixed(0)} -> ${f1.toFixed(0)})`
  );
}
