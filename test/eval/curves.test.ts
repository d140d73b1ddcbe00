import assert from "node:assert/strict";
import { test } from "node:test";
import { computeCurves, curvesFromPredictions, prPoints, recallAtFpr, rocPoints, sweepPoints, thresholdForRecall } from "../../src/eval/curves.js";

const close = (a: number | null | undefined, b: number, tol = 1e-12) => assert.ok(a != null && Math.abs(a - b) <= tol, `${a} != ${b}`);

test("ties move together: points, AUC and AP by hand", () => {
  const c = computeCurves([0.9, 0.5, 0.5, 0.1], [true, true, false, false]);
  assert.deepEqual(
    c.points.map((p) => [p.threshold, p.tp, p.fp]),
    [
      [null, 0, 0],
      [0.9, 1, 0],
      [0.5, 2, 1],
      [0.1, 2, 2],
    ],
  );
  assert.deepEqual(c.points.map((p) => p.recall), [0, 0.5, 1, 1]);
  assert.deepEqual(c.points.map((p) => p.fpr), [0, 0, 0.5, 1]);
  assert.deepEqual(c.points.map((p) => p.precision), [null, 1, 2 / 3, 0.5]);
  close(c.roc_auc, 0.875); // pairs: (0.9>0.5, 0.9>0.1, 0.5=0.5 -> 1/2, 0.5>0.1) = 3.5 / 4
  close(c.average_precision, 0.5 * 1 + 0.5 * (2 / 3));
  assert.deepEqual(rocPoints(c), [[0, 0], [0, 0.5], [0.5, 1], [1, 1]]);
  assert.deepEqual(prPoints(c), [[0.5, 1], [1, 2 / 3], [1, 0.5]]);
  // The threshold sweep: recall and fpr at each distinct score, the flag-nothing point left out.
  assert.deepEqual(sweepPoints(c), [
    { threshold: 0.9, recall: 0.5, fpr: 0 },
    { threshold: 0.5, recall: 1, fpr: 0.5 },
    { threshold: 0.1, recall: 1, fpr: 1 },
  ]);
  assert.deepEqual(sweepPoints(computeCurves([0.3, 0.2], [true, true])), []);
});

test("scikit-learn's documented example: AP 0.8333, AUC 0.75", () => {
  const c = computeCurves([0.1, 0.4, 0.35, 0.8], [false, false, true, true]);
  close(c.average_precision, 5 / 6);
  close(c.roc_auc, 0.75);
});

test("ROC AUC equals the Mann-Whitney statistic on random data with many ties", () => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let trial = 0; trial < 5; trial++) {
    const n = 200;
    const scores = Array.from({ length: n }, () => Math.round(rnd() * 10) / 10); // 11 distinct values
    const truth = scores.map((s) => rnd() < 0.3 + 0.4 * s);
    let u = 0;
    let pairs = 0;
    for (let i = 0; i < n; i++) {
      if (!truth[i]) continue;
      for (let j = 0; j < n; j++) {
        if (truth[j]) continue;
        pairs++;
        u += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
      }
    }
    close(computeCurves(scores, truth).roc_auc, u / pairs, 1e-12);
  }
});

// Positives 0.95, 0.8, 0.6, 0.3; ten negatives 0.9, 0.7, 0.5, 0.4, 0.2, 0.1, 0.05, 0.04, 0.03, 0.02.
// Descending: .95 P (1,0)  .9 N (1,1)  .8 P (2,1)  .7 N (2,2)  .6 P (3,2)  .5 N (3,3)  .4 N (3,4)  .3 P (4,4) ...
const POS = [0.95, 0.8, 0.6, 0.3];
const NEG = [0.9, 0.7, 0.5, 0.4, 0.2, 0.1, 0.05, 0.04, 0.03, 0.02];
const C = computeCurves([...POS, ...NEG], [...POS.map(() => true), ...NEG.map(() => false)], { fprTargets: [0.01, 0.05, 0.1, 0.2] });

test("recall at FPR <= target: max recall among thresholds within the bound", () => {
  assert.deepEqual(C.recall_at_fpr, [
    { max_fpr: 0.01, recall: 0.25, threshold: 0.95, fpr: 0 },
    { max_fpr: 0.05, recall: 0.25, threshold: 0.95, fpr: 0 },
    { max_fpr: 0.1, recall: 0.5, threshold: 0.8, fpr: 0.1 },
    { max_fpr: 0.2, recall: 0.75, threshold: 0.6, fpr: 0.2 },
  ]);
  // The best point under 0.15 is still threshold 0.8 (the 0.7 point adds a negative, no positive).
  assert.deepEqual(recallAtFpr(C, 0.15), { max_fpr: 0.15, recall: 0.5, threshold: 0.8, fpr: 0.1 });
});

test("thresholdForRecall: the highest threshold reaching the target", () => {
  assert.deepEqual(thresholdForRecall(C, 0.5), { threshold: 0.8, recall: 0.5, fpr: 0.1, precision: 2 / 3, tp: 2, fp: 1 });
  assert.deepEqual(thresholdForRecall(C, 0.7), { threshold: 0.6, recall: 0.75, fpr: 0.2, precision: 0.6, tp: 3, fp: 2 });
  assert.deepEqual(thresholdForRecall(C, 1), { threshold: 0.3, recall: 1, fpr: 0.4, precision: 0.5, tp: 4, fp: 4 });
  assert.throws(() => thresholdForRecall(C, 0), /target must be in \(0, 1\], got 0/);
  assert.throws(() => thresholdForRecall(C, 1.2), /got 1.2/);
});

test("degenerate: all positive, all negative, all tied, empty", () => {
  const allPos = computeCurves([0.9, 0.2], [true, true]);
  assert.equal(allPos.roc_auc, null);
  assert.equal(allPos.average_precision, 1);
  assert.ok(allPos.points.every((p) => p.fpr === null));
  assert.deepEqual(allPos.recall_at_fpr[0], { max_fpr: 0.01, recall: null, threshold: null, fpr: null });
  assert.deepEqual(thresholdForRecall(allPos, 1), { threshold: 0.2, recall: 1, fpr: null, precision: 1, tp: 2, fp: 0 });
  assert.deepEqual(rocPoints(allPos), []);

  const allNeg = computeCurves([0.9, 0.2], [false, false]);
  assert.equal(allNeg.roc_auc, null);
  assert.equal(allNeg.average_precision, null);
  assert.equal(thresholdForRecall(allNeg, 0.9), null);
  assert.deepEqual(prPoints(allNeg), []);

  const tied = computeCurves([0.5, 0.5, 0.5, 0.5], [true, false, true, false]);
  assert.equal(tied.points.length, 2);
  close(tied.roc_auc, 0.5);
  close(tied.average_precision, 0.5);

  const empty = computeCurves([], []);
  assert.equal(empty.points.length, 1);
  assert.equal(empty.roc_auc, null);
});

test("bad input and predictions without scores", () => {
  assert.throws(() => computeCurves([0.1, NaN], [true, false]), /score 1 is not a finite number \(NaN\)/);
  assert.throws(() => computeCurves([0.1], [true, false]), /1 scores but 2 truth values/);
  const c = curvesFromPredictions([
    { id: "a", labels: ["nudity"], predicted: { kind: "safe" }, score: 0.7 },
    { id: "b", labels: [], predicted: { kind: "safe" }, score: 0.2 },
    { id: "c", labels: [], predicted: { kind: "unparseable" } },
  ]);
  assert.equal(c.n, 2);
  assert.equal(c.skipped, 1);
  assert.equal(c.roc_auc, 1);
});
