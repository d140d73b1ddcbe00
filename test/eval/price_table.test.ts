import assert from "node:assert/strict";
import { test } from "node:test";
import { computeMetrics, type Prediction } from "../../src/eval/metrics.js";
import { falseAlarmsPer1000, formatPriceTable, priceSentence } from "../../src/eval/price_table.js";

/** pos offensive images of which `caught` flagged, neg safe images of which `alarms` flagged. */
function run(pos: number, caught: number, neg: number, alarms: number) {
  const preds: Prediction[] = [];
  for (let i = 0; i < pos; i++) preds.push({ id: `p${i}`, labels: ["weapons"], predicted: i < caught ? { kind: "offensive", categories: ["weapons"] } : { kind: "safe" } });
  for (let i = 0; i < neg; i++) preds.push({ id: `n${i}`, labels: [], predicted: i < alarms ? { kind: "offensive", categories: ["weapons"] } : { kind: "safe" } });
  return computeMetrics(preds, { categories: ["nudity", "weapons"] });
}

test("false alarms per 1,000 safe images = FPR x 1000", () => {
  assert.equal(falseAlarmsPer1000(run(10, 5, 400, 18)), 45);
  assert.equal(falseAlarmsPer1000(run(10, 5, 0, 0)), null);
});

test("the price table and sentence: caught/missed, recall, false alarms per 1,000, against the baseline", () => {
  const sft = { name: "sft", metrics: run(300, 250, 700, 21), rocAuc: 0.9712 };
  const grpo = { name: "grpo", metrics: run(300, 288, 700, 70), rocAuc: 0.9734 };
  const t = formatPriceTable([sft, grpo]).split("\n");
  assert.equal(t[0], "run    caught  missed  recall    fpr  false alarms / 1,000 safe  roc_auc");
  assert.equal(t[1], "sft   250/300      50   0.833  0.030                         30    0.971");
  assert.equal(t[2], "grpo  288/300      12   0.960  0.100                        100    0.973");
  assert.equal(
    priceSentence(grpo, sft),
    "grpo vs sft: catches 13 more of every 100 offensive images (recall 0.833 -> 0.960) for 70 more false alarms per 1,000 safe images (30 -> 100)",
  );
  assert.match(priceSentence(sft, grpo)!, /catches 13 fewer .* for 70 fewer false alarms/);
  assert.equal(priceSentence({ name: "x", metrics: run(0, 0, 5, 1) }, sft), null);
});
