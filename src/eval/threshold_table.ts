// The terminal table of threshold decisions: per model and target recall,
// the thresholds chosen on the threshold split and what they give on the
// evaluated split (recall and FPR with Wilson 95% intervals), then the
// card's saved thresholds when there are any. Few-images warnings follow as
// "! ..." lines, as in the comparison table.
import { alignedLines, formatMetric } from "./compare_table.js";
import { formatWithInterval } from "./intervals.js";
import type { ModelEvaluation } from "./run_eval.js";

/** The table, or "" when no model has thresholds. */
export function formatThresholdTable(evals: readonly Pick<ModelEvaluation, "name" | "thresholds" | "atThresholds" | "atSavedThresholds" | "calibration" | "calibrationNote">[], opts: { split: string; thresholdSplit: string }): string {
  const chosen = opts.thresholdSplit !== "none";
  const header = ["run", "thresholds", "target", "threshold", chosen ? `${opts.thresholdSplit} recall` : "", `${opts.split} recall [95% CI]`, `${opts.split} fpr [95% CI]`, "precision"];
  const rows: string[][] = [];
  const warnings: string[] = [];
  const notes: string[] = [];
  for (const r of evals) {
    r.atThresholds.forEach((a, k) => {
      const set = r.thresholds?.sets[k];
      rows.push([r.name, a.label, String(a.target_recall), a.threshold.toPrecision(4), formatMetric(set?.rule.recall.value), formatWithInterval(a.intervals.recall), formatWithInterval(a.intervals.fpr), formatMetric(a.metrics.precision)]);
      if (set?.rule.few_images) warnings.push(`! ${r.name}: the ${opts.thresholdSplit} figures behind the recall-${a.target_recall} thresholds rest on few images (< ${r.thresholds!.min_support} offensive or safe)`);
    });
    const s = r.atSavedThresholds;
    if (s) rows.push([r.name, s.label, String(s.target_recall), s.threshold.toPrecision(4), "", formatWithInterval(s.intervals.recall), formatWithInterval(s.intervals.fpr), formatMetric(s.metrics.precision)]);
    if (r.atThresholds[0]?.intervals.few_images) warnings.push(...r.atThresholds[0].intervals.warnings.map((w) => `! ${r.name}: on ${opts.split}, ${w}`));
    if (r.calibration) {
      const c = r.calibration;
      notes.push(`${r.name}: calibrated score = sigmoid(${c.a.toFixed(3)} * logit(score) + ${c.b.toFixed(3)}), fitted on ${c.fitted_on.images} ${c.fitted_on.split} images; ECE on ${opts.split} ${formatMetric(c.on_eval_split.ece_before)} -> ${formatMetric(c.on_eval_split.ece_after)}`);
    } else if (r.calibrationNote) notes.push(`${r.name}: ${r.calibrationNote}`);
  }
  if (rows.length === 0 && notes.length === 0) return "";
  const lines = [
    "",
    `decisions at thresholds (flag when the offensive score >= threshold; ${chosen ? `chosen on ${opts.thresholdSplit}, ` : ""}checked on ${opts.split}):`,
    ...(rows.length ? alignedLines(header, rows, 2) : ["(none chosen)"]),
    ...warnings,
    ...notes,
  ];
  return lines.join("\n") + "\n";
}
