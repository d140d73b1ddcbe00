// Training curves for the report, read from the runs' metrics.jsonl files:
// SFT loss and validation ROC AUC; GRPO mean reward, recall and FPR of the
// sampled answers, KL to the reference, share of zero-variance groups, and
// loss. GRPO's per-step figures come from a handful of prompts, so they are
// shown as a moving average (the window is named in the legend).
import fs from "node:fs";
import { readJsonl } from "../io/sinks/jsonl.js";
import type { TrainingChart } from "./report.js";
import { PALETTE, type Series } from "./svg_plot.js";

export interface TrainingLog {
  /** Run name in legends, e.g. "grpo" or "grpo_symmetric". */
  name: string;
  /** Its metrics.jsonl. */
  file: string;
}

/** (step, value) of one metric, finite values only, in file order. */
export function metricPoints(file: string, metric: string): [number, number][] {
  if (!fs.existsSync(file)) return [];
  return readJsonl(file)
    .filter((r) => Number.isFinite(r.metrics[metric]))
    .map((r) => [r.step, r.metrics[metric]] as [number, number]);
}

/** Trailing moving average over `window` points (fewer at the start). */
export function movingAverage(points: [number, number][], window: number): [number, number][] {
  if (!(Number.isInteger(window) && window >= 1)) throw new Error(`movingAverage: window must be a positive integer, got ${window}`);
  let sum = 0;
  return points.map(([x, y], i) => {
    sum += y;
    if (i >= window) sum -= points[i - window][1];
    return [x, sum / Math.min(i + 1, window)];
  });
}

function chart(title: string, yLabel: string, series: Series[]): TrainingChart | null {
  const kept = series.filter((s) => s.points.length > 0);
  return kept.length ? { title, series: kept, xLabel: "step", yLabel } : null;
}

/**
 * SFT's loss per step is noisy (a few examples each) and starts near ln(vocab)
 * before dropping within the first percent of steps: shown as a moving
 * average over 1% of the steps, from the end of the first 2%, so that the
 * scale shows the part of the run where it matters.
 */
function sftLossChart(sft: TrainingLog): TrainingChart | null {
  const pts = metricPoints(sft.file, "train/loss");
  if (pts.length === 0) return null;
  const window = Math.max(1, Math.round(pts.length / 100));
  const skip = Math.floor(pts.length / 50);
  const title = window > 1 ? `SFT: training loss (mean of ${window} steps, from step ${pts[skip][0]})` : "SFT: training loss";
  return chart(title, "loss (answer tokens)", [{ name: sft.name, points: movingAverage(pts, window).slice(skip), color: PALETTE[0] }]);
}

/**
 * The charts of an SFT run and GRPO runs (any may be missing; charts without
 * data are left out). `smooth` is the moving-average window for GRPO (default 10).
 */
export function trainingCharts(sft: TrainingLog | null, grpo: TrainingLog[], smooth = 10): TrainingChart[] {
  const colour = (i: number) => PALETTE[(i + 1) % PALETTE.length];
  const ma = (pts: [number, number][]) => (smooth > 1 ? movingAverage(pts, smooth) : pts);
  const suffix = smooth > 1 ? ` (mean of ${smooth} steps)` : "";
  const perRun = (metric: string, label = (n: string) => n, dashed = false) =>
    grpo.map((g, i) => ({ name: label(g.name) + suffix, points: ma(metricPoints(g.file, metric)), color: colour(i), dashed }));
  const charts = [
    sft && sftLossChart(sft),
    sft && chart("SFT: validation ROC AUC", "ROC AUC", [{ name: `${sft.name} (val split)`, points: metricPoints(sft.file, "val/roc_auc"), color: PALETTE[0] }]),
    chart("GRPO: mean reward", "reward", perRun("reward/total_mean")),
    chart("GRPO: batch recall (solid), FPR (dashed)", "share of sampled answers", [
      ...perRun("batch/recall", (n) => `${n} recall`),
      ...perRun("batch/fpr", (n) => `${n} FPR`, true),
    ]),
    chart("GRPO: KL to the SFT model", "KL (k3, per token)", perRun("train/kl")),
    chart("GRPO: groups with zero reward variance", "share of groups", perRun("train/zero_variance_fraction")),
    chart("GRPO: loss", "loss", perRun("train/loss")),
  ];
  return charts.filter((c): c is TrainingChart => c !== null && c !== undefined);
}
