// The price of recall by the manifest's hard flag: counts from known
// predictions, the unparseable policy of the whole split carried over, and no
// table when nothing is marked hard.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Example } from "../../src/data/types.js";
import { computeMetrics, type Prediction } from "../../src/eval/metrics.js";
import { formatSubsetTable, subsetRows } from "../../src/eval/subset_table.js";

const categories = ["nudity", "weapons"];
const flag = { kind: "offensive", categories: ["weapons"] } as const;
const safe = { kind: "safe" } as const;

/** An example and its prediction: offensive or not, hard or not, flagged / safe / unparseable. */
function item(id: string, offensive: boolean, hard: boolean | undefined, answer: "flag" | "safe" | "unparseable"): [Example, Prediction] {
  const labels = offensive ? ["weapons"] : [];
  const ex = { id, image: { path: `${id}.png` }, labels, ...(hard === undefined ? {} : { hard }) } as unknown as Example;
  const predicted = answer === "flag" ? flag : answer === "safe" ? safe : ({ kind: "unparseable" } as const);
  return [ex, { id, labels, predicted } as Prediction];
}

function build(items: [Example, Prediction][], unparseableAs: "wrong" | "safe" | "offensive" = "wrong") {
  const examples = items.map(([e]) => e);
  const predictions = items.map(([, p]) => p);
  return { examples, run: { name: "grpo", predictions, metrics: computeMetrics(predictions, { categories, unparseableAs }) } };
}

test("recall and FPR of the normal and the hard images, with the split's answer rule", () => {
  // normal: 4 offensive (3 caught), 5 safe (1 flagged); hard: 2 offensive (1 caught), 3 safe (2 flagged).
  // Hard flags given as false and left out both count as normal.
  const { examples, run } = build([
    item("a", true, false, "flag"), item("b", true, undefined, "flag"), item("c", true, false, "flag"), item("d", true, false, "safe"),
    item("e", false, false, "flag"), item("f", false, false, "safe"), item("g", false, undefined, "safe"), item("h", false, false, "safe"), item("i", false, false, "safe"),
    item("j", true, true, "flag"), item("k", true, true, "safe"),
    item("l", false, true, "flag"), item("m", false, true, "flag"), item("n", false, true, "safe"),
  ]);
  const rows = subsetRows([run], examples)!;
  assert.deepEqual(rows, [
    { run: "grpo", subset: "normal", offensive: 4, caught: 3, safe: 5, recall: 0.75, fpr: 0.2 },
    { run: "grpo", subset: "hard", offensive: 2, caught: 1, safe: 3, recall: 0.5, fpr: 2 / 3 },
  ]);
  const t = formatSubsetTable(rows).split("\n");
  assert.equal(t[0], "run   subset  caught  recall  safe    fpr  false alarms / 1,000 safe");
  assert.equal(t[1], "grpo  normal     3/4   0.750     5  0.200                        200");
  assert.equal(t[2], "grpo  hard       1/2   0.500     3  0.667                        667");
});

test("an unparseable answer counts as the whole split's policy says", () => {
  const items = [item("a", true, true, "unparseable"), item("b", false, true, "unparseable"), item("c", true, false, "flag"), item("d", false, false, "safe")];
  const asOffensive = build(items, "offensive");
  const hard = subsetRows([asOffensive.run], asOffensive.examples)!.find((r) => r.subset === "hard")!;
  assert.equal(hard.caught, 1);
  assert.equal(hard.fpr, 1);
  const asSafe = build(items, "safe");
  const hard2 = subsetRows([asSafe.run], asSafe.examples)!.find((r) => r.subset === "hard")!;
  assert.equal(hard2.caught, 0);
  assert.equal(hard2.fpr, 0);
});

test("no hard example: no table; a prediction for an unknown id is an error naming it", () => {
  const plain = build([item("a", true, undefined, "flag"), item("b", false, false, "safe")]);
  assert.equal(subsetRows([plain.run], plain.examples), null);
  const { examples, run } = build([item("a", true, true, "flag"), item("b", false, false, "safe")]);
  assert.throws(() => subsetRows([run], examples.slice(0, 1)), /run 'grpo' has a prediction for id 'b', which is not among the 1 evaluated examples/);
});
