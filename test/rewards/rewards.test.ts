// Built-in rewards (recall, category bonus, format) as tables of
// (labels, completion) -> score, the weighted total with nulls, and the
// errors that name a misbehaving function.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  categoryBonus,
  computeRewards,
  formatReward,
  makeRewardContext,
  recallReward,
  type RewardFunction,
} from "../../src/rewards/index.js";

const CATS = ["nudity", "weapons"];

/** Scores of one reward function over a table of [labels, completion]. */
async function scoresOf(rf: RewardFunction, rows: [string[], string][]): Promise<(number | null)[]> {
  const ctx = makeRewardContext(
    rows.map((r) => r[1]),
    rows.map((r) => r[0]),
    CATS,
  );
  return await rf.fn(ctx);
}

// [labels, completion, outcome]
const CASES: [string[], string, "TP" | "FN" | "FP" | "TN" | "U+" | "U-"][] = [
  [["weapons"], "<answer>weapons</answer>", "TP"],
  [["weapons"], "<answer>nudity</answer>", "TP"], // wrong category, still flagged
  [["nudity", "weapons"], "<answer>weapons, nudity</answer>", "TP"],
  [["nudity"], "<think>skin</think><answer>nudity</answer><end_of_utterance>", "TP"],
  [["weapons"], "<answer>safe</answer>", "FN"],
  [["nudity", "weapons"], "<answer>SAFE</answer>", "FN"],
  [[], "<answer>weapons</answer>", "FP"],
  [[], "<answer>nudity, weapons</answer>", "FP"],
  [[], "<answer>safe</answer>", "TN"],
  [[], "<think>a cat</think> <answer>safe</answer>", "TN"],
  [["weapons"], "<answer>safe, weapons</answer>", "U+"], // hedge on an offensive image
  [["weapons"], "a gun", "U+"],
  [["nudity"], "<answer>nudity", "U+"], // truncated
  [[], "<answer></answer>", "U-"],
  [[], "<answer>drugs</answer>", "U-"],
  [[], "<answer>safe</answer> I hope", "U-"],
];

describe("recall reward", () => {
  test("defaults: TP +1, FN -1, FP -0.2, TN +0.1, unparseable scored as the wrong answer", async () => {
    const expected = { TP: 1, FN: -1, FP: -0.2, TN: 0.1, "U+": -1, "U-": -0.2 };
    const got = await scoresOf(
      recallReward(),
      CASES.map(([l, c]) => [l, c]),
    );
    CASES.forEach(([labels, completion, outcome], i) => assert.equal(got[i], expected[outcome], `${outcome}: ${JSON.stringify(labels)} ${JSON.stringify(completion)}`));
  });

  test("custom values, and unparseable as a fixed value", async () => {
    const rf = recallReward({ truePositive: 2, falseNegative: -5, falsePositive: -0.5, trueNegative: 0.25, unparseableAs: -3 });
    const expected = { TP: 2, FN: -5, FP: -0.5, TN: 0.25, "U+": -3, "U-": -3 };
    const got = await scoresOf(
      rf,
      CASES.map(([l, c]) => [l, c]),
    );
    CASES.forEach(([, completion, outcome], i) => assert.equal(got[i], expected[outcome], `${outcome}: ${JSON.stringify(completion)}`));
    assert.equal(rf.name, "recall");
    assert.equal(rf.weight, 1);
  });

  test("custom values with unparseable as 'wrong' follow the custom FN/FP", async () => {
    const got = await scoresOf(recallReward({ falseNegative: -4, falsePositive: -0.7 }), [
      [["weapons"], "junk"],
      [[], "junk"],
    ]);
    assert.deepEqual(got, [-4, -0.7]);
  });

  test("bad options are Errors naming the option", () => {
    assert.throws(() => recallReward({ truePositve: 1 } as never), /reward 'recall': unknown option 'truePositve'/);
    assert.throws(() => recallReward({ falseNegative: "-1" } as never), /option 'falseNegative' must be a finite number, got "-1"/);
    assert.throws(() => recallReward({ unparseableAs: "right" } as never), /option 'unparseableAs' must be "wrong" or a finite number/);
    assert.throws(() => recallReward({ trueNegative: NaN }), /option 'trueNegative' must be a finite number/);
  });
});

describe("category bonus", () => {
  const rows: [string[], string][] = [
    [["weapons"], "<answer>weapons</answer>"], // exact
    [["nudity", "weapons"], "<answer>weapons</answer>"], // 1 of 2
    [["weapons"], "<answer>nudity, weapons</answer>"], // 1 of 2 (one extra)
    [["nudity"], "<answer>weapons</answer>"], // disjoint
    [["weapons"], "<answer>safe</answer>"], // missed
    [["weapons"], "junk"], // unparseable
    [[], "<answer>weapons</answer>"], // safe image: not applicable
    [[], "<answer>safe</answer>"],
    [["Weapons"], "<answer>weapons</answer>"], // labels compare case-insensitively
  ];
  test("jaccard (default): |P ∩ L| / |P ∪ L| on offensive images, null on safe ones; default weight 0.5", async () => {
    const rf = categoryBonus();
    assert.equal(rf.name, "category_bonus");
    assert.equal(rf.weight, 0.5);
    assert.deepEqual(await scoresOf(rf, rows), [1, 0.5, 0.5, 0, 0, 0, null, null, 1]);
  });
  test("exact: 1 only for the same set", async () => {
    assert.deepEqual(await scoresOf(categoryBonus({ mode: "exact" }), rows), [1, 0, 0, 0, 0, 0, null, null, 1]);
  });
  test("bad options", () => {
    assert.throws(() => categoryBonus({ mode: "f1" } as never), /reward 'category_bonus': option 'mode' must be "jaccard" or "exact", got "f1"/);
    assert.throws(() => categoryBonus({ scale: 1 } as never), /unknown option 'scale'/);
  });
});

describe("format reward", () => {
  const rows: [string[], string][] = [
    [[], "<answer>safe</answer>"],
    [["weapons"], "<think>gun</think><answer>weapons</answer>"],
    [["weapons"], "<answer>safe</answer>"], // wrong but well formed
    [[], "<answer>safe, weapons</answer>"],
    [[], "safe"],
  ];
  test("1 when parseable, else 0; requireThink also needs a think block", async () => {
    const rf = formatReward();
    assert.equal(rf.name, "format");
    assert.equal(rf.weight, 0.1);
    assert.deepEqual(await scoresOf(rf, rows), [1, 1, 1, 0, 0]);
    assert.deepEqual(await scoresOf(formatReward({ requireThink: true }), rows), [0, 1, 0, 0, 0]);
    assert.throws(() => formatReward({ requireThink: 1 } as never), /option 'requireThink' must be true or false/);
  });
});

describe("computeRewards", () => {
  const ctx = makeRewardContext(
    ["<answer>weapons</answer>", "<answer>safe</answer>", "junk", "<answer>nudity</answer>"],
    [["nudity", "weapons"], [], ["weapons"], []],
    CATS,
  );

  test("weighted sum of the built-ins, raw scores per function", async () => {
    const r = await computeRewards([recallReward(), formatReward(), categoryBonus()], ctx);
    assert.deepEqual([...r.perFunction.recall], [1, 0.1, -1, -0.2]);
    assert.deepEqual([...r.perFunction.format], [1, 1, 0, 1]);
    const bonus = [...r.perFunction.category_bonus];
    assert.equal(bonus[0], 0.5);
    assert.ok(Number.isNaN(bonus[1]) && Number.isNaN(bonus[3]), "null -> NaN in perFunction");
    assert.equal(bonus[2], 0);
    // recall + 0.1 format + 0.5 bonus (null counts 0)
    const expected = [1 + 0.1 + 0.25, 0.1 + 0.1, -1 + 0 + 0, -0.2 + 0.1];
    [...r.total].forEach((t, i) => assert.ok(Math.abs(t - expected[i]) < 1e-12, `total[${i}] = ${t}, expected ${expected[i]}`));
    assert.deepEqual([...r.unscorable], [0, 0, 0, 0]);
  });

  test("nulls count 0; a row where every function returns null is unscorable (total NaN), as in TRL", async () => {
    const a: RewardFunction = { name: "a", weight: 2, fn: () => [1, null, null, 3] };
    const b: RewardFunction = { name: "b", weight: -1, fn: async () => [null, 4, null, 1] };
    const r = await computeRewards([a, b], ctx);
    assert.equal(r.total[0], 2);
    assert.equal(r.total[1], -4);
    assert.ok(Number.isNaN(r.total[2]));
    assert.equal(r.total[3], 5);
    assert.deepEqual([...r.unscorable], [0, 0, 1, 0]);
  });

  test("a function returning the wrong length, NaN, Infinity, undefined or a non-array, or throwing, is an Error naming it", async () => {
    const cases: [RewardFunction, RegExp][] = [
      [{ name: "short", weight: 1, fn: () => [1, 2, 3] }, /reward function 'short' returned 3 scores for 4 completions/],
      [{ name: "nanny", weight: 1, fn: () => [1, NaN, 0, 0] }, /reward function 'nanny' returned NaN for completion 1; expected a finite number or null/],
      [{ name: "inf", weight: 1, fn: () => [0, 0, 0, Infinity] }, /reward function 'inf' returned Infinity for completion 3/],
      [{ name: "undef", weight: 1, fn: () => [0, 0, undefined as never, 0] }, /reward function 'undef' returned undefined for completion 2/],
      [{ name: "str", weight: 1, fn: () => ["1", 0, 0, 0] as never }, /reward function 'str' returned "1" for completion 0/],
      [{ name: "obj", weight: 1, fn: () => ({ length: 4 }) as never }, /reward function 'obj' returned object, expected an array of 4/],
      [
        {
          name: "boom",
          weight: 1,
          fn: () => {
            throw new Error("kaput");
          },
        },
        /reward function 'boom' threw: kaput/,
      ],
      [{ name: "reject", weight: 1, fn: async () => Promise.reject(new Error("later")) }, /reward function 'reject' threw: later/],
    ];
    for (const [bad, msg] of cases) {
      await assert.rejects(computeRewards([recallReward(), bad], ctx), msg);
    }
    await assert.rejects(computeRewards([recallReward(), recallReward()], ctx), /two reward functions are named 'recall'/);
    await assert.rejects(computeRewards([{ name: "w", weight: NaN, fn: () => [0, 0, 0, 0] }], ctx), /reward function 'w': weight must be a finite number/);
    await assert.rejects(computeRewards([], ctx), /no reward functions/);
    await assert.rejects(computeRewards([recallReward()], { ...ctx, labels: ctx.labels.slice(1) }), /4 completions, 3 label lists and 4 parses/);
    assert.throws(() => makeRewardContext(["x"], [["safe"]], CATS), /labels\[0\] holds "safe"; a safe image has no labels/);
    assert.throws(() => makeRewardContext(["x"], ["weapons" as never], CATS), /labels\[0\] must be a list of category names/);
    assert.throws(() => makeRewardContext(["x", "y"], [[]], CATS), /2 completions but 1 label lists/);
  });
});
