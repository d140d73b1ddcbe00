// Platt calibration of the offensive score: recovers known parameters, sits
// at a stationary point of its objective, lowers the expected calibration
// error on held-out data of a miscalibrated model, and keeps the ranking.
// ECE and reliability bins against hand-computed values.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkCalibration, expectedCalibrationError, fitPlatt, reliabilityBins } from "../../src/eval/calibration.js";
import { calibrate } from "../../src/policy/thresholds.js";

/** mulberry32: a small seeded generator, so the synthetic sets are fixed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/**
 * A miscalibrated model: its score is sigmoid(x), but an image with that
 * score is offensive with probability sigmoid(a x + b).
 */
function synthetic(n: number, a: number, b: number, seed: number): { scores: number[]; truth: boolean[] } {
  const r = rng(seed);
  const scores: number[] = [];
  const truth: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const x = (r() - 0.5) * 8;
    scores.push(sigmoid(x));
    truth.push(r() < sigmoid(a * x + b));
  }
  return { scores, truth };
}

test("fitPlatt recovers the slope and bias of a miscalibrated score (20000 images, within 0.08)", () => {
  const { scores, truth } = synthetic(20000, 0.5, -1, 1);
  const fit = fitPlatt(scores, truth);
  assert.ok(fit.ok);
  if (!fit.ok) return;
  assert.ok(Math.abs(fit.calibration.a - 0.5) < 0.08, `a = ${fit.calibration.a}`);
  assert.ok(Math.abs(fit.calibration.b + 1) < 0.08, `b = ${fit.calibration.b}`);
  // An already calibrated score is left about as it is.
  const cal = synthetic(20000, 1, 0, 2);
  const id = fitPlatt(cal.scores, cal.truth);
  assert.ok(id.ok && Math.abs(id.calibration.a - 1) < 0.08 && Math.abs(id.calibration.b) < 0.08, JSON.stringify(id));
});

test("fitPlatt ends at a stationary point of the smoothed-target log-likelihood", () => {
  const { scores, truth } = synthetic(500, 2, 0.7, 3);
  const fit = fitPlatt(scores, truth);
  assert.ok(fit.ok);
  if (!fit.ok) return;
  const pos = truth.filter(Boolean).length;
  const neg = truth.length - pos;
  const t = truth.map((y) => (y ? (pos + 1) / (pos + 2) : 1 / (neg + 2)));
  let ga = 0;
  let gb = 0;
  scores.forEach((s, i) => {
    const x = Math.log(s / (1 - s));
    const q = sigmoid(fit.calibration.a * x + fit.calibration.b);
    ga += (q - t[i]) * x;
    gb += q - t[i];
  });
  assert.ok(Math.abs(ga) < 1e-6 && Math.abs(gb) < 1e-6, `gradient (${ga}, ${gb})`);
});

test("calibration lowers ECE on held-out images of a miscalibrated model, keeps the order of scores", () => {
  const fitSet = synthetic(2000, 0.4, 1.2, 4);
  const held = synthetic(2000, 0.4, 1.2, 5);
  const fit = fitPlatt(fitSet.scores, fitSet.truth);
  assert.ok(fit.ok);
  if (!fit.ok) return;
  const check = checkCalibration(held.scores, held.truth, fit.calibration);
  assert.ok(check.ece_before! > 0.1, `ECE before ${check.ece_before}`);
  assert.ok(check.ece_after! < 0.03, `ECE after ${check.ece_after}`);
  assert.ok(check.ece_after! < check.ece_before! / 4);
  const order = (xs: number[]) => xs.map((_, i) => i).sort((i, j) => xs[i] - xs[j]);
  assert.deepEqual(order(held.scores.map((s) => calibrate(s, fit.calibration))), order(held.scores));
});

test("perfectly separated scores still give a finite fit (Platt's smoothed targets); degenerate sets say why", () => {
  const fit = fitPlatt([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], [false, false, false, true, true, true]);
  assert.ok(fit.ok && Number.isFinite(fit.calibration.a) && fit.calibration.a > 0 && fit.calibration.a < 50, JSON.stringify(fit));
  const one = fitPlatt([0.2, 0.9], [true, true]);
  assert.ok(!one.ok && /offensive and safe/.test(one.reason));
  const reversed = fitPlatt([0.9, 0.8, 0.7, 0.3, 0.2, 0.1, 0.6, 0.4], [false, false, false, true, true, true, false, true]);
  assert.ok(!reversed.ok && /do not rank offensive images above safe/.test(reversed.reason), JSON.stringify(reversed));
  assert.throws(() => fitPlatt([1.5], [true]), /score 0 must be a number in \[0, 1\]/);
});

test("ECE and reliability bins by hand", () => {
  // Bin [0, 0.1): 0.05, 0.05 (one positive): mean 0.05, frac 0.5 -> |0.45| * 2/5
  // Bin [0.9, 1]: 0.95, 1.0, 0.9 (all positive): mean 0.95, frac 1 -> |0.05| * 3/5
  const scores = [0.05, 0.05, 0.95, 1.0, 0.9];
  const truth = [true, false, true, true, true];
  const bins = reliabilityBins(scores, truth, 10);
  assert.equal(bins.length, 10);
  assert.deepEqual([bins[0].n, bins[9].n], [2, 3]);
  assert.ok(Math.abs(bins[9].mean_score! - 0.95) < 1e-12);
  assert.equal(bins[4].mean_score, null);
  const ece = expectedCalibrationError(scores, truth, 10)!;
  assert.ok(Math.abs(ece - (0.45 * 2 + 0.05 * 3) / 5) < 1e-12, `ECE ${ece}`);
  assert.equal(expectedCalibrationError([], []), null);
});
