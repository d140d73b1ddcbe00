// The report's sections about deciding: calibration (ECE before and after,
// reliability diagrams) and the thresholds chosen on the threshold split with
// what they give on the evaluated split (recall and FPR with Wilson 95%
// intervals, per-category thresholds, few-images warnings). report.ts puts
// them in the page.
import type { ThresholdRecord } from "../policy/thresholds.js";
import type { ReliabilityBin } from "./calibration.js";
import { formatInterval, formatMetric } from "./compare_table.js";
import { formatWithInterval, type RatesWithIntervals } from "./intervals.js";
import type { CalibrationReport, RuleEvaluation } from "./run_eval.js";
import { escapeHtml as e, lineChartSvg, PALETTE } from "./svg_plot.js";

/** What a run may carry for these sections (all optional: a report of plain predictions has none). */
export interface DecisionParts {
  name: string;
  intervals?: RatesWithIntervals;
  calibration?: CalibrationReport | null;
  calibrationNote?: string | null;
  thresholds?: ThresholdRecord | null;
  atThresholds?: RuleEvaluation[];
  atSavedThresholds?: RuleEvaluation | null;
}

function table(header: string[], rows: string[][], rowClasses: string[] = []): string {
  const th = header.map((h) => `<th>${e(h)}</th>`).join("");
  const body = rows.map((r, i) => `<tr${rowClasses[i] ? ` class="${rowClasses[i]}"` : ""}>${r.map((c) => `<td>${e(c)}</td>`).join("")}</tr>`).join("\n");
  return `<table>\n<tr>${th}</tr>\n${body}\n</table>`;
}

/** The few-images warnings under the runs table. */
export function warningsBlock(runs: readonly DecisionParts[]): string {
  const items = runs.flatMap((r) => (r.intervals?.warnings ?? []).map((w) => `<li>${e(r.name)}: ${e(w)}; its interval is wide, read it before the point value</li>`));
  return items.length ? `<ul class="warn">\n${items.join("\n")}\n</ul>` : "";
}

/** The runs table's interval cells: recall and FPR 95% CI. */
export function intervalCells(r: DecisionParts): string[] {
  const i = r.intervals;
  return i ? [formatInterval(i.recall.lo, i.recall.hi), formatInterval(i.fpr.lo, i.fpr.hi)] : ["n/a", "n/a"];
}

const binPoints = (bins: ReliabilityBin[]): [number, number][] => bins.filter((b) => b.n > 0).map((b) => [b.mean_score!, b.frac_positive!]);

/** ECE before/after and a reliability diagram per calibrated run. */
export function calibrationSection(runs: readonly DecisionParts[], evalSplit: string): string {
  const rows: string[][] = [];
  const charts: string[] = [];
  const notes: string[] = [];
  runs.forEach((r, i) => {
    const c = r.calibration;
    if (!c) {
      if (r.calibrationNote) notes.push(`${r.name}: ${r.calibrationNote}`);
      return;
    }
    rows.push([r.name, c.a.toFixed(3), c.b.toFixed(3), `${c.fitted_on.split} (${c.fitted_on.images})`, formatMetric(c.on_fit_split.ece_before), formatMetric(c.on_fit_split.ece_after), formatMetric(c.on_eval_split.ece_before), formatMetric(c.on_eval_split.ece_after)]);
    const color = PALETTE[i % PALETTE.length];
    charts.push(
      lineChartSvg(
        [
          { name: `raw score (ECE ${formatMetric(c.on_eval_split.ece_before)})`, points: binPoints(c.on_eval_split.reliability_before), color, dashed: true },
          { name: `calibrated (ECE ${formatMetric(c.on_eval_split.ece_after)})`, points: binPoints(c.on_eval_split.reliability_after), color },
        ],
        { title: `Reliability: ${r.name} on ${evalSplit}`, xLabel: "mean score in bin", yLabel: "share offensive in bin", xDomain: [0, 1], yDomain: [0, 1], diagonal: true },
      ),
    );
  });
  if (rows.length === 0 && notes.length === 0) return "";
  return [
    "<h2>Calibration</h2>",
    `<p class="meta">Platt scaling of the offensive score's logit: calibrated = sigmoid(a &middot; logit(score) + b), fitted on the threshold split. It is increasing, so rankings, AUC and decisions at matching thresholds are unchanged; it makes a score of 0.8 mean about 80% offensive. ECE = expected calibration error over 10 equal-width bins (0 = calibrated).</p>`,
    rows.length ? table(["run", "a", "b", "fitted on (images)", "ECE fit split before", "after", `ECE ${evalSplit} before`, "after"], rows) : "",
    notes.length ? `<ul class="warn">${notes.map((n) => `<li>${e(n)}</li>`).join("")}</ul>` : "",
    charts.length ? `<div class="charts">\n${charts.join("\n")}\n</div>` : "",
  ]
    .filter((x) => x !== "")
    .join("\n");
}

/** Thresholds chosen on the threshold split, per category too, and what they give on the evaluated split. */
export function decisionsSection(runs: readonly DecisionParts[], evalSplit: string, categories: readonly string[]): string {
  const withSets = runs.filter((r) => (r.atThresholds?.length ?? 0) > 0 || r.atSavedThresholds);
  if (withSets.length === 0) return "";
  const split = withSets.find((r) => r.thresholds)?.thresholds?.split ?? "val";
  const header = ["run", "thresholds", "target recall", "overall threshold", ...categories.map((c) => `${c} threshold`), `${split} recall [95% CI]`, `${split} fpr [95% CI]`, `${evalSplit} recall [95% CI]`, `${evalSplit} fpr [95% CI]`, `${evalSplit} precision`];
  const rows: string[][] = [];
  const classes: string[] = [];
  const warnings: string[] = [];
  for (const r of withSets) {
    (r.atThresholds ?? []).forEach((a, k) => {
      const set = r.thresholds?.sets[k];
      const cat = (c: string) => {
        const f = set?.per_category[c];
        return f ? f.threshold.toPrecision(4) : "n/a";
      };
      rows.push([r.name, a.label, String(a.target_recall), a.threshold.toPrecision(4), ...categories.map(cat), set ? formatWithInterval(set.rule.recall) : "", set ? formatWithInterval(set.rule.fpr) : "", formatWithInterval(a.intervals.recall), formatWithInterval(a.intervals.fpr), formatMetric(a.metrics.precision)]);
      const few = (set?.rule.few_images ?? false) || a.intervals.few_images;
      classes.push(few ? "few" : "");
      if (set?.rule.few_images) warnings.push(`${r.name}, recall ${a.target_recall}: the ${split} figures rest on fewer than ${r.thresholds!.min_support} offensive or safe images`);
      for (const c of categories) {
        const f = set?.per_category[c];
        if (f?.few_images) warnings.push(`${r.name}, recall ${a.target_recall}: the ${c} threshold rests on ${f.recall.of} ${c} images on ${split}`);
      }
    });
    if (r.atThresholds?.[0]?.intervals.few_images) warnings.push(...r.atThresholds[0].intervals.warnings.map((w) => `${r.name} on ${evalSplit}: ${w}`));
    const s = r.atSavedThresholds;
    if (s) {
      rows.push([r.name, s.label, String(s.target_recall), s.threshold.toPrecision(4), ...categories.map(() => ""), "", "", formatWithInterval(s.intervals.recall), formatWithInterval(s.intervals.fpr), formatMetric(s.metrics.precision)]);
      classes.push(s.intervals.few_images ? "few" : "");
    }
  }
  return [
    "<h2>Decisions at thresholds</h2>",
    `<p class="meta">An image is flagged when its offensive score (calibrated when a calibration is shown below) is &gt;= the overall threshold; a flagged image is named with the categories whose score (P(category named) in the answer) is &gt;= that category's threshold, else with the answer's categories. Thresholds are chosen on ${e(split)} as the highest reaching the target recall there, then checked on ${e(evalSplit)}; predict decides the same way (vlm-grpo eval --save-thresholds stores them in the model's vlm_grpo.json). Rows marked <span class="few">like this</span> rest on few images.</p>`,
    table(header, rows, classes),
    warnings.length ? `<ul class="warn">${[...new Set(warnings)].map((w) => `<li>${e(w)}</li>`).join("")}</ul>` : "",
  ]
    .filter((x) => x !== "")
    .join("\n");
}
