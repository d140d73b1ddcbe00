import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { metricPoints, movingAverage, trainingCharts } from "../../src/eval/training_charts.js";
import { JsonlSink } from "../../src/io/sinks/jsonl.js";

test("movingAverage: trailing mean over the window, shorter at the start", () => {
  const pts: [number, number][] = [[1, 2], [2, 4], [3, 6], [4, 8], [5, 0]];
  assert.deepEqual(movingAverage(pts, 3), [[1, 2], [2, 3], [3, 4], [4, 6], [5, 14 / 3]]);
  assert.deepEqual(movingAverage(pts, 1), pts);
  assert.throws(() => movingAverage(pts, 0), /window must be a positive integer/);
});

test("trainingCharts: SFT and GRPO curves from metrics.jsonl, charts without data left out", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-charts-"));
  try {
    const sftFile = path.join(dir, "sft.jsonl");
    const s = new JsonlSink(sftFile);
    s.log(10, { "train/loss": 0.5 });
    s.log(20, { "train/loss": 0.25, "val/roc_auc": 0.9 });
    s.close();
    const grpoFile = path.join(dir, "grpo.jsonl");
    const g = new JsonlSink(grpoFile);
    for (let step = 1; step <= 4; step++) g.log(step, { "reward/total_mean": step, "batch/recall": step / 4, "batch/fpr": NaN, "train/zero_variance_fraction": 0.5, "train/loss": 0.1 });
    g.close();
    assert.deepEqual(metricPoints(sftFile, "train/loss"), [[10, 0.5], [20, 0.25]]);
    assert.deepEqual(metricPoints(path.join(dir, "missing.jsonl"), "train/loss"), []);
    const charts = trainingCharts({ name: "sft", file: sftFile }, [{ name: "grpo", file: grpoFile }], 2);
    const titles = charts.map((c) => c.title);
    // No KL was logged (beta 0) and batch FPR was undefined throughout: the KL chart is left out, the recall chart keeps its recall line.
    assert.deepEqual(titles, [
      "SFT: training loss",
      "SFT: validation ROC AUC",
      "GRPO: mean reward",
      "GRPO: batch recall (solid), FPR (dashed)",
      "GRPO: groups with zero reward variance",
      "GRPO: loss",
    ]);
    const reward = charts[2].series[0];
    assert.equal(reward.name, "grpo (mean of 2 steps)");
    assert.deepEqual(reward.points, [[1, 1], [2, 1.5], [3, 2.5], [4, 3.5]]);
    assert.equal(charts[3].series.length, 1);
    assert.equal(charts[3].series[0].name, "grpo recall (mean of 2 steps)");
    // 2 SFT points: no smoothing, nothing skipped.
    assert.deepEqual(charts[0].series[0].points, [[10, 0.5], [20, 0.25]]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("trainingCharts: a long SFT loss is shown as a moving average over 1% of the steps, from the end of the first 2%", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-charts-"));
  try {
    const sftFile = path.join(dir, "sft.jsonl");
    const s = new JsonlSink(sftFile);
    // 1000 steps: 7 at step 1, then alternating 0 / 2 (mean 1).
    for (let step = 1; step <= 1000; step++) s.log(step, { "train/loss": step === 1 ? 7 : step % 2 ? 2 : 0 });
    s.close();
    const [loss] = trainingCharts({ name: "sft", file: sftFile }, []);
    assert.equal(loss.title, "SFT: training loss (mean of 10 steps, from step 21)");
    const pts = loss.series[0].points;
    assert.equal(pts.length, 980);
    assert.equal(pts[0][0], 21);
    for (const [, y] of pts) assert.ok(Math.abs(y - 1) < 1e-12, `smoothed loss ${y}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
