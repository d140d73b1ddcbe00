import assert from "node:assert/strict";
import { test } from "node:test";
import { DEMO_COSTS, DemoEta, demoStages } from "../../src/cli/demo_eta.js";

/** A clock the test moves by hand (ms). */
const clock = () => {
  const c = { t: 0 };
  return { c, now: () => c.t };
};

test("DemoEta: before any work the time left is the stages' expected sum; then it learns the machine's speed", () => {
  const { c, now } = clock();
  const eta = new DemoEta(
    [
      { key: "a", title: "A", expectedSeconds: 10 },
      { key: "b", title: "B", expectedSeconds: 30 },
      { key: "c", title: "C", expectedSeconds: 20, parts: 2 },
    ],
    now,
  );
  assert.equal(eta.secondsLeft(), 60);
  assert.equal(eta.begin("a"), "[0:00 elapsed, about 1:00 left] demo 1/3: A");
  c.t = 20_000; // stage a took 20 s instead of 10: this machine is 2x slower
  const line = eta.begin("b");
  assert.equal(eta.secondsLeft(), 100); // (30 + 20) x 2
  assert.equal(line, "[0:20 elapsed, about 1:40 left] demo 2/3: B");
  // Half of b done in 15 s (expected 15): speed over a + half of b = (20 + 15) / (10 + 15) = 1.4
  c.t = 35_000;
  assert.equal(eta.context({ label: "sft", count: 50, total: 100, elapsedSeconds: 15 }), "demo 2/3 b, about 0:49 left");
  assert.ok(Math.abs(eta.secondsLeft()! - (15 + 20) * 1.4) < 1e-9);
});

test("DemoEta: a stage of several progress runs counts each as an equal part", () => {
  const { c, now } = clock();
  const eta = new DemoEta([{ key: "eval", title: "E", expectedSeconds: 40, parts: 4 }], now);
  eta.begin("eval");
  c.t = 10_000;
  eta.context({ label: "eval base", count: 10, total: 10, elapsedSeconds: 10 }); // part 1 done: 1/4 in 10 s as expected
  assert.ok(Math.abs(eta.secondsLeft()! - 30) < 1e-9);
  c.t = 25_000;
  eta.context({ label: "eval sft", count: 5, total: 10, elapsedSeconds: 15 }); // 1.5 parts in 25 s: speed 25/15
  assert.ok(Math.abs(eta.secondsLeft()! - 2.5 * 10 * (25 / 15)) < 1e-9);
  eta.finish();
  assert.equal(eta.secondsLeft(), 0);
  assert.equal(eta.context({ label: "x", count: 1, total: 2, elapsedSeconds: 1 }), "");
});

test("DemoEta refuses unknown stages and stages without a cost", () => {
  assert.throws(() => new DemoEta([]), /no stages/);
  assert.throws(() => new DemoEta([{ key: "a", title: "A", expectedSeconds: 0 }]), /stage 'a' needs expectedSeconds > 0/);
  const eta = new DemoEta([{ key: "a", title: "A", expectedSeconds: 1 }]);
  assert.throws(() => eta.begin("zz"), /unknown stage 'zz'/);
});

test("demoStages: the symmetric ablation adds a GRPO stage and a fourth evaluated model; costs scale with the work", () => {
  const w = { n: 1000, train: 750, test: 150, sftEpochs: 2, grpoSteps: 10, ablation: false, model: "tiny idefics3" };
  const plain = demoStages(w);
  assert.deepEqual(plain.map((s) => s.key), ["data", "init", "sft", "grpo", "eval"]);
  assert.equal(plain.find((s) => s.key === "eval")!.parts, 3);
  const abl = demoStages({ ...w, ablation: true });
  assert.deepEqual(abl.map((s) => s.key), ["data", "init", "sft", "grpo", "grpo_symmetric", "eval"]);
  assert.equal(abl.find((s) => s.key === "eval")!.parts, 4);
  const sft = plain.find((s) => s.key === "sft")!.expectedSeconds;
  const sft2 = demoStages({ ...w, sftEpochs: 4 }).find((s) => s.key === "sft")!.expectedSeconds;
  assert.ok(Math.abs(sft2 - DEMO_COSTS.stageOverhead - 2 * (sft - DEMO_COSTS.stageOverhead)) < 1e-9);
});
