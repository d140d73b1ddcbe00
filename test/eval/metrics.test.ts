import assert from "node:assert/strict";
import { test } from "node:test";
import { binaryMetrics, computeMetrics, outcomeOf, type Prediction, UNPARSEABLE_CLASS, UNSPECIFIED_CLASS } from "../../src/eval/metrics.js";

const CATS = ["nudity", "weapons"];
const safe = { kind: "safe" } as const;
const unparseable = { kind: "unparseable" } as const;
const off = (...categories: string[]) => ({ kind: "offensive" as const, categories });
const p = (id: string, labels: string[], predicted: Prediction["predicted"]): Prediction => ({ id, labels, predicted });

// Twelve images; per-image outcomes under the default "wrong" policy in comments
// as  binary | nudity | weapons.
const DATA: Prediction[] = [
  p("a", ["nudity"], off("nudity")), //            TP | TP | TN
  p("b", ["weapons"], off("nudity")), //           TP | FP | FN
  p("c", ["nudity", "weapons"], safe), //          FN | FN | FN
  p("d", [], safe), //                             TN | TN | TN
  p("e", [], off("weapons")), //                   FP | TN | FP
  p("f", ["nudity"], unparseable), //              FN | FN | FP
  p("g", [], unparseable), //                      FP | FP | FP
  p("h", [], safe), //                             TN | TN | TN
  p("i", ["weapons"], off("weapons")), //          TP | TN | TP
  p("j", [], safe), //                             TN | TN | TN
  p("k", ["nudity"], off("nudity")), //            TP | TP | TN
  p("l", [], off("nudity")), //                    FP | FP | TN
];
const close = (a: number | null, b: number, tol = 1e-12) => assert.ok(a !== null && Math.abs(a - b) <= tol, `${a} != ${b}`);

test("binary metrics, unparseable counted as wrong (default)", () => {
  const m = computeMetrics(DATA, { categories: CATS });
  assert.deepEqual(m.confusion, { tp: 4, fn: 2, fp: 3, tn: 3 });
  assert.equal(m.n, 12);
  assert.equal(m.positives, 6);
  assert.equal(m.negatives, 6);
  assert.equal(m.unparseable, 2);
  assert.equal(m.unparseable_as, "wrong");
  close(m.recall, 4 / 6);
  close(m.precision, 4 / 7);
  close(m.fpr, 3 / 6);
  close(m.f1, 8 / 13); // 2TP / (2TP + FN + FP)
  close(m.f2, 20 / 31); // 5TP / (5TP + 4FN + FP)
  close(m.accuracy, 7 / 12);
  close(m.unparseable_rate, 2 / 12);
});

test("unparseable policies 'safe' and 'offensive'", () => {
  const s = computeMetrics(DATA, { categories: CATS, unparseableAs: "safe" });
  assert.deepEqual(s.confusion, { tp: 4, fn: 2, fp: 2, tn: 4 });
  close(s.fpr, 2 / 6);
  assert.deepEqual(s.per_category.weapons.confusion, { tp: 1, fn: 2, fp: 1, tn: 8 });
  const o = computeMetrics(DATA, { categories: CATS, unparseableAs: "offensive" });
  assert.deepEqual(o.confusion, { tp: 5, fn: 1, fp: 3, tn: 3 });
  close(o.recall, 5 / 6);
  assert.deepEqual(o.per_category.nudity.confusion, { tp: 3, fn: 1, fp: 3, tn: 5 });
  assert.equal(outcomeOf(DATA[5], "wrong"), "fn");
  assert.equal(outcomeOf(DATA[6], "wrong"), "fp");
  assert.equal(outcomeOf(DATA[6], "safe"), "tn");
  assert.equal(outcomeOf(DATA[5], "offensive"), "tp");
});

test("per-category one-vs-rest, micro and macro averages", () => {
  const m = computeMetrics(DATA, { categories: CATS });
  assert.deepEqual(m.per_category.nudity.confusion, { tp: 2, fn: 2, fp: 3, tn: 5 });
  assert.deepEqual(m.per_category.weapons.confusion, { tp: 1, fn: 2, fp: 3, tn: 6 });
  assert.equal(m.per_category.nudity.support, 4);
  close(m.per_category.nudity.recall, 0.5);
  close(m.per_category.nudity.precision, 0.4);
  close(m.per_category.nudity.fpr, 3 / 8);
  close(m.per_category.weapons.recall, 1 / 3);
  close(m.per_category.weapons.fpr, 1 / 3);
  // micro pools counts: TP 3, FN 4, FP 6, TN 11
  close(m.micro.recall, 3 / 7);
  close(m.micro.precision, 1 / 3);
  close(m.micro.fpr, 6 / 17);
  close(m.micro.f1, 6 / 16);
  close(m.macro.recall, (1 / 2 + 1 / 3) / 2);
  close(m.macro.precision, (0.4 + 0.25) / 2);
  close(m.macro.f1, (4 / 9 + 2 / 7) / 2);
});

test("confusion matrix over classes: rows true, columns predicted, combos and unparseable", () => {
  const m = computeMetrics([...DATA, p("m", ["weapons"], off()), p("n", [], off("gore", "nudity"))], { categories: CATS });
  const cm = m.confusion_matrix;
  assert.deepEqual(cm.rows, ["safe", "nudity", "weapons", "nudity+weapons"]);
  assert.deepEqual(cm.cols, ["safe", "nudity", "weapons", "nudity+gore", UNSPECIFIED_CLASS, UNPARSEABLE_CLASS]);
  assert.deepEqual(cm.counts, [
    [3, 1, 1, 1, 0, 1],
    [0, 2, 0, 0, 0, 1],
    [0, 1, 1, 0, 1, 0],
    [1, 0, 0, 0, 0, 0],
  ]);
  // An unnamed-category flag still counts as a binary hit, not as a category hit.
  assert.equal(m.confusion.tp, 5);
  assert.equal(m.per_category.weapons.confusion.fn, 3);
});

test("0/0 is null: no positives, nothing flagged, no negatives, empty set", () => {
  const empty = computeMetrics([], { categories: CATS });
  for (const k of ["recall", "precision", "fpr", "f1", "f2", "accuracy", "unparseable_rate"] as const) assert.equal(empty[k], null, k);
  assert.equal(empty.macro.recall, null);

  const allSafe = computeMetrics([p("x", [], safe), p("y", [], off("nudity"))], { categories: CATS });
  assert.equal(allSafe.recall, null);
  assert.equal(allSafe.precision, 0);
  assert.equal(allSafe.f1, 0); // FP > 0 -> F = 0, defined
  close(allSafe.fpr, 0.5);

  const missedAll = computeMetrics([p("x", ["nudity"], safe)], { categories: CATS });
  assert.equal(missedAll.recall, 0);
  assert.equal(missedAll.precision, null);
  assert.equal(missedAll.f1, 0);
  assert.equal(missedAll.fpr, null);
  // weapons has no support and no predictions: every ratio but fpr is null, and macro skips it.
  assert.equal(missedAll.per_category.weapons.recall, null);
  assert.equal(missedAll.per_category.weapons.f1, null);
  assert.equal(missedAll.per_category.weapons.fpr, 0);
  assert.equal(missedAll.macro.recall, 0);
  assert.deepEqual(binaryMetrics({ tp: 0, fn: 0, fp: 0, tn: 0 }), { recall: null, precision: null, fpr: null, f1: null, f2: null, accuracy: null });
});

test("metrics JSON has the required snake_case keys", () => {
  const json = JSON.parse(JSON.stringify(computeMetrics(DATA, { categories: CATS })));
  for (const k of ["recall", "precision", "fpr", "f1", "f2", "accuracy", "unparseable_rate", "per_category", "micro", "macro", "confusion_matrix"]) assert.ok(k in json, k);
});

test("bad predictions are errors naming the prediction and what was expected", () => {
  assert.throws(() => computeMetrics([p("a", ["gore"], safe)], { categories: CATS }), /prediction 0 \(id "a"\): true label "gore" is not one of the categories \[nudity, weapons\]/);
  assert.throws(() => computeMetrics([p("a", [], { kind: "maybe" } as never)], { categories: CATS }), /prediction 0 \(id "a"\): predicted.kind must be/);
  assert.throws(() => computeMetrics([{ ...p("z", [], safe), score: 1.5 }], { categories: CATS }), /id "z"\): score must be a number in \[0, 1\], got 1.5/);
  assert.throws(() => computeMetrics([], { categories: CATS, unparseableAs: "maybe" as never }), /unparseableAs must be/);
});
