// What a moderation team reads: Wilson intervals and few-images warnings in
// the terminal table and the report, the thresholds chosen on val and checked
// on test, and calibration (ECE before/after, reliability diagram).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { checkCalibration, fitPlatt } from "../../src/eval/calibration.js";
import { chooseThresholds, type LabelledClassification } from "../../src/eval/choose_thresholds.js";
import { formatCompareTable } from "../../src/eval/compare_table.js";
import { ratesWithIntervals } from "../../src/eval/intervals.js";
import { computeMetrics, type Prediction } from "../../src/eval/metrics.js";
import { writeReport } from "../../src/eval/report.js";
import { evaluateRule, type CalibrationReport } from "../../src/eval/run_eval.js";
import { formatThresholdTable } from "../../src/eval/threshold_table.js";
import { ruleFromSet } from "../../src/policy/decide.js";

const CATS = ["nudity", "weapons"];

/** A deterministic miscalibrated scorer: offensive images score high, but every score is pushed up. */
function items(n: number, offset: number): LabelledClassification[] {
  return Array.from({ length: n }, (_, i) => {
    const offensive = i % 3 === 0;
    const label = offensive ? [i % 2 === 0 ? "nudity" : "weapons"] : [];
    const u = ((i * 7919 + offset) % 97) / 97;
    const score = Math.min(0.999, 0.5 + 0.45 * (offensive ? 0.3 + 0.7 * u : u * 0.8));
    const cs = { nudity: label[0] === "nudity" ? 0.4 + 0.5 * u : 0.3 * u, weapons: label[0] === "weapons" ? 0.4 + 0.5 * u : 0.3 * u };
    return { classification: { id: `${offset}-${i}`, answer: "", parsed: { kind: "safe" as const, hasThink: false }, score, categoryScores: cs }, labels: label };
  });
}

test("tables and report: intervals, warnings, thresholds chosen on val and checked on test, calibration", async () => {
  const val = items(90, 1);
  const testSet = items(45, 2); // 15 offensive: few
  const fit = fitPlatt(val.map((x) => x.classification.score), val.map((x) => x.labels.length > 0));
  assert.ok(fit.ok);
  if (!fit.ok) return;
  const onFit = checkCalibration(val.map((x) => x.classification.score), val.map((x) => x.labels.length > 0), fit.calibration);
  const onEval = checkCalibration(testSet.map((x) => x.classification.score), testSet.map((x) => x.labels.length > 0), fit.calibration);
  assert.ok(onEval.ece_after! < onEval.ece_before!, `ECE ${onEval.ece_before} -> ${onEval.ece_after}`);
  const calibration: CalibrationReport = { ...fit.calibration, fitted_on: { split: "val", images: 90 }, on_fit_split: onFit, on_eval_split: onEval };
  const thresholds = chooseThresholds(val, { categories: CATS, targetRecalls: [0.9], defaultTargetRecall: 0.95, calibration: { ...fit.calibration, ece_before: onFit.ece_before!, ece_after: onFit.ece_after! }, minSupport: 30, split: "val", data: "d.jsonl" })!;
  const atThresholds = thresholds.sets.map((set) => ({ label: "chosen on val", target_recall: set.target_recall, threshold: set.overall.threshold, ...evaluateRule(testSet, ruleFromSet(set, thresholds.calibration, "x"), CATS, 30) }));
  const preds: Prediction[] = testSet.map((x) => ({ id: x.classification.id, labels: [...x.labels], predicted: x.classification.score > 0.8 ? { kind: "offensive", categories: [] } : { kind: "safe" }, score: x.classification.score }));
  const metrics = computeMetrics(preds, { categories: CATS });
  const intervals = ratesWithIntervals(metrics.confusion, 30);
  assert.deepEqual(intervals.warnings, ["recall rests on 15 offensive images (< 30)"]);

  const table = formatCompareTable([{ name: "grpo", metrics, intervals }]);
  assert.match(table.split("\n")[0], /recall 95% CI\s+fpr 95% CI$/);
  assert.match(table, /! grpo: recall rests on 15 offensive images \(< 30\); its interval is wide/);
  const run = { name: "grpo", thresholds, atThresholds, atSavedThresholds: null, calibration, calibrationNote: null };
  const tt = formatThresholdTable([run], { split: "test", thresholdSplit: "val" });
  assert.match(tt, /decisions at thresholds .*chosen on val, checked on test/);
  assert.match(tt, /grpo\s+chosen on val\s+0\.9\s+/);
  assert.match(tt, /grpo\s+chosen on val\s+0\.95\s+/);
  assert.match(tt, /calibrated score = sigmoid\(\d\.\d{3} \* logit\(score\) \+ -?\d\.\d{3}\), fitted on 90 val images; ECE on test \d\.\d{3} -> \d\.\d{3}/);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-report-dec-"));
  try {
    const file = await writeReport(dir, { runs: [{ ...run, metrics, intervals, predictions: preds }], categories: CATS, split: "test" });
    const html = fs.readFileSync(file, "utf8");
    assert.ok(html.includes("<th>recall 95% CI</th><th>fpr 95% CI</th>"));
    assert.ok(html.includes("grpo: recall rests on 15 offensive images (&lt; 30)"));
    assert.ok(html.includes("<h2>Decisions at thresholds</h2>") && html.includes("<h2>Calibration</h2>"));
    assert.ok(html.includes("<th>nudity threshold</th><th>weapons threshold</th>"));
    assert.ok(html.includes('<tr class="few">'), "rows resting on few images are marked");
    assert.ok(html.includes('aria-label="Reliability: grpo on test"'));
    assert.ok(html.includes(`ECE ${onEval.ece_before!.toFixed(3)}`) && html.includes(`ECE ${onEval.ece_after!.toFixed(3)}`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
