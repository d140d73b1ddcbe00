// Stratified seeded splits: per-class shares within one example of the
// fractions, determinism, explicit splits kept, independence from row order.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { allocate, assignSplits, hash32, labelSetKey, resolveFractions, Rng, type Example, type SplitName } from "../../src/data/index.js";

/** A dataset with `counts[labelSet]` examples of each label set. */
function makeExamples(counts: Record<string, number>): Example[] {
  const out: Example[] = [];
  let k = 0;
  for (const [key, n] of Object.entries(counts)) {
    const labels = key === "safe" ? [] : key.split("+");
    for (let j = 0; j < n; j++) out.push({ id: `ex${String(k++).padStart(4, "0")}`, image: { path: `/x/${k}.png` }, labels, source: { file: "m.jsonl", line: k } });
  }
  return out;
}

function countBy(examples: Example[]): Record<string, Record<SplitName, number>> {
  const out: Record<string, Record<SplitName, number>> = {};
  for (const e of examples) {
    const key = labelSetKey(e);
    out[key] ??= { train: 0, val: 0, test: 0 };
    out[key][e.split!]++;
  }
  return out;
}

const COUNTS = { safe: 437, weapons: 61, nudity: 58, "nudity+weapons": 13, "weapons+x": 3 };

describe("assignSplits", () => {
  test("every class gets floor or ceil of each fraction (default 0.8 / 0.1 / 0.1)", () => {
    const ex = makeExamples(COUNTS);
    const split = assignSplits(ex, { seed: 3 });
    const counts = countBy(split);
    for (const [key, n] of Object.entries(COUNTS)) {
      for (const [s, f] of Object.entries({ train: 0.8, val: 0.1, test: 0.1 }) as [SplitName, number][]) {
        const got = counts[key][s];
        assert.ok(Math.abs(got - f * n) < 1, `${key}/${s}: ${got} vs ${f * n}`);
      }
      assert.equal(counts[key].train + counts[key].val + counts[key].test, n);
    }
    // known values: 437 -> 349.6 / 43.7 / 43.7 -> floors 349 / 43 / 43, the 2 left go to the largest remainders (val, test)
    assert.deepEqual(counts.safe, { train: 349, val: 44, test: 44 });
  });

  test("custom fractions are honoured per class", () => {
    const ex = makeExamples({ safe: 100, weapons: 40 });
    const counts = countBy(assignSplits(ex, { fractions: { train: 0.5, test: 0.5 } }));
    assert.deepEqual(counts, { safe: { train: 50, val: 0, test: 50 }, weapons: { train: 20, val: 0, test: 20 } });
  });

  test("same seed, same split; another seed, another split", () => {
    const ex = makeExamples(COUNTS);
    const a = assignSplits(ex, { seed: 7 }).map((e) => e.split);
    const b = assignSplits(ex, { seed: 7 }).map((e) => e.split);
    const c = assignSplits(ex, { seed: 8 }).map((e) => e.split);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  test("the split of an id does not depend on the order rows were read in", () => {
    const ex = makeExamples(COUNTS);
    const byId = (list: Example[]) => Object.fromEntries(list.map((e) => [e.id, e.split]));
    const shuffled = new Rng(99).shuffle([...ex]);
    assert.deepEqual(byId(assignSplits(shuffled, { seed: 1 })), byId(assignSplits(ex, { seed: 1 })));
  });

  test("explicit splits are kept; fractions apply to the rest", () => {
    const ex = makeExamples({ safe: 50, weapons: 50 });
    for (let k = 0; k < 30; k++) ex[k].split = "test"; // 30 safe rows pinned to test
    const split = assignSplits(ex, { seed: 0 });
    for (let k = 0; k < 30; k++) assert.equal(split[k].split, "test");
    const counts = countBy(split);
    // the 20 unpinned safe rows: 16 / 2 / 2; plus the 30 pinned test rows
    assert.deepEqual(counts.safe, { train: 16, val: 2, test: 32 });
    assert.deepEqual(counts.weapons, { train: 40, val: 5, test: 5 });
    // the input is not modified
    assert.equal(ex[40].split, undefined);
  });

  test("a custom stratum key (e.g. label set + hard)", () => {
    const ex = makeExamples({ safe: 20 }).map((e, k) => ({ ...e, hard: k < 10 }));
    const split = assignSplits(ex, { fractions: { train: 0.5, val: 0.5 }, stratifyBy: (e) => `${labelSetKey(e)}/${e.hard}` });
    const hardTrain = split.filter((e) => e.hard && e.split === "train").length;
    assert.equal(hardTrain, 5);
  });

  test("fractions are checked", () => {
    assert.throws(() => resolveFractions({ train: 0.8, val: 0.1 }), /must sum to 1, got 0.9/);
    assert.throws(() => resolveFractions({ train: 1.2, val: -0.2 }), /train must be a number in \[0, 1\]/);
    assert.throws(() => resolveFractions({ train: 0.5, dev: 0.5 } as never), /unknown split 'dev'/);
  });
});

describe("allocate and the generator", () => {
  test("largest remainder, ties to train then val then test", () => {
    const f = { train: 0.8, val: 0.1, test: 0.1 };
    assert.deepEqual(allocate(10, f), { train: 8, val: 1, test: 1 });
    assert.deepEqual(allocate(5, f), { train: 4, val: 1, test: 0 });
    assert.deepEqual(allocate(3, f), { train: 3, val: 0, test: 0 });
    assert.deepEqual(allocate(1, f), { train: 1, val: 0, test: 0 });
    assert.deepEqual(allocate(0, f), { train: 0, val: 0, test: 0 });
  });

  test("mulberry32 gives known values for seed 0 and is uniform enough", () => {
    // Reference outputs (uint32) of the published mulberry32 for seeds 0 and 123456789.
    const r = new Rng(0);
    assert.deepEqual([r.next(), r.next(), r.next()].map((x) => x * 4294967296), [1144304738, 1416247, 958946056]);
    const q = new Rng(123456789);
    assert.deepEqual([q.next(), q.next()].map((x) => x * 4294967296), [1107202814, 4169434471]);
    const s = new Rng(hash32("x", 1));
    let sum = 0;
    for (let k = 0; k < 20000; k++) sum += s.next();
    assert.ok(Math.abs(sum / 20000 - 0.5) < 0.01);
    assert.notEqual(hash32("a", 1), hash32("a", 2));
    assert.equal(hash32("a", 1), hash32("a", 1));
  });
});
