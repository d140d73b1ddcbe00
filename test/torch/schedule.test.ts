// Learning-rate schedules: Hugging Face transformers' multipliers, with the
// expected values worked out by hand from its formulas (optimization.py):
//   warmup: s / max(1, W);  linear: max(0, (T - s) / max(1, T - W));
//   cosine: max(0, 0.5 (1 + cos(pi * cycles * 2 * (s - W) / max(1, T - W)))).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { keep, liveTensors, tensor } from "../../src/torch/index.js";
import { AdamW, LRScheduler, type LRSchedulerState, lrMultiplier } from "../../src/torch/optim/index.js";

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-12, `${what}: got ${a}, expected ${b}`);

describe("lrMultiplier", () => {
  test("constant ignores warmup", () => {
    for (const s of [0, 1, 5, 1000]) assert.equal(lrMultiplier("constant", s, { warmupSteps: 10 }), 1);
  });

  test("constant_with_warmup: 0, 1/4, 2/4, 3/4, then 1", () => {
    const got = [0, 1, 2, 3, 4, 5, 100].map((s) => lrMultiplier("constant_with_warmup", s, { warmupSteps: 4 }));
    assert.deepEqual(got, [0, 0.25, 0.5, 0.75, 1, 1, 1]);
  });

  test("linear, warmup 2 of 10: up to 1 at step 2, then down to 0 at step 10 and stays there", () => {
    const o = { warmupSteps: 2, totalSteps: 10 };
    const expected: [number, number][] = [[0, 0], [1, 0.5], [2, 1], [3, 7 / 8], [6, 0.5], [9, 1 / 8], [10, 0], [12, 0]];
    for (const [s, e] of expected) close(lrMultiplier("linear", s, o), e, `linear step ${s}`);
    close(lrMultiplier("linear", 0, { totalSteps: 4 }), 1, "no warmup starts at 1");
  });

  test("cosine (half wave), warmup 2 of 10", () => {
    const o = { warmupSteps: 2, totalSteps: 10 };
    const expected: [number, number][] = [
      [0, 0],
      [1, 0.5],
      [2, 1],
      [4, 0.5 * (1 + Math.SQRT1_2)], // progress 1/4: cos(pi/4)
      [6, 0.5], // progress 1/2: cos(pi/2) = 0
      [8, 0.5 * (1 - Math.SQRT1_2)], // progress 3/4
      [10, 0],
      [12, 0.5 * (1 - Math.SQRT1_2)], // HF only clamps at 0: past the end the wave rises again
    ];
    for (const [s, e] of expected) close(lrMultiplier("cosine", s, o), e, `cosine step ${s}`);
  });

  test("cosine with numCycles 1: a full wave back to 1", () => {
    const o = { totalSteps: 8, numCycles: 1 };
    const expected: [number, number][] = [[0, 1], [2, 0.5], [4, 0], [6, 0.5], [8, 1]];
    for (const [s, e] of expected) close(lrMultiplier("cosine", s, o), e, `cosine(1 cycle) step ${s}`);
  });

  test("bad options name what to change", () => {
    assert.throws(() => lrMultiplier("linear", 1, { warmupSteps: 2 }), /lrMultiplier: schedule 'linear' needs totalSteps, an integer > 0; got undefined/);
    assert.throws(() => lrMultiplier("cosine", 1, { totalSteps: 10, warmupSteps: -1 }), /warmupSteps must be an integer >= 0, got -1/);
    assert.throws(() => lrMultiplier("step" as never, 1), /unknown schedule 'step'; expected one of constant, constant_with_warmup, linear, cosine/);
    assert.throws(() => lrMultiplier("constant", -1), /step must be an integer >= 0, got -1/);
  });
});

describe("LRScheduler", () => {
  test("sets each group's lr to its base lr times the multiplier, from step 0; state round trip", () => {
    const live0 = liveTensors();
    const a = keep(tensor([1, 2]).requiresGrad_(true));
    const b = keep(tensor([3]).requiresGrad_(true));
    const opt = new AdamW([{ params: [a], lr: 0.1 }, { params: [b], lr: 0.01 }]);
    const sched = new LRScheduler(opt, { kind: "linear", warmupSteps: 2, totalSteps: 10 });
    assert.deepEqual(sched.lastLr(), [0, 0]);
    sched.step();
    close(sched.lastLr()[0], 0.05, "group 0 at step 1");
    close(sched.lastLr()[1], 0.005, "group 1 at step 1");
    sched.step();
    sched.step();
    assert.equal(sched.currentStep, 3);
    close(opt.paramGroups[0].lr, 0.1 * (7 / 8), "group 0 lr at step 3");
    const saved = JSON.parse(JSON.stringify(sched.stateDict())) as LRSchedulerState;
    assert.deepEqual(saved, { kind: "linear", warmupSteps: 2, totalSteps: 10, numCycles: 0.5, step: 3, baseLrs: [0.1, 0.01] });

    // A fresh optimizer (default lr) and a different schedule take the saved one over.
    const opt2 = new AdamW([{ params: [a] }, { params: [b] }]);
    const sched2 = new LRScheduler(opt2, { kind: "constant" });
    sched2.loadStateDict(saved);
    assert.deepEqual(sched2.lastLr(), sched.lastLr());
    sched.step();
    sched2.step();
    assert.deepEqual(sched2.lastLr(), sched.lastLr());
    assert.throws(() => sched2.loadStateDict({ ...saved, baseLrs: [0.1] }), /baseLrs must hold 2 finite numbers \(one per parameter group\)/);
    for (const o of [opt, opt2]) o.dispose();
    a.dispose();
    b.dispose();
    assert.equal(liveTensors(), live0);
  });
});
