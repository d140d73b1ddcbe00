// GRPO that cannot fail silently: the stall detector's streak rules, and
// whole runs where every completion is unparseable (max_completion_length 1
// cuts every answer to one token), which used to print "grpo done" and save
// an unchanged model: with on_stall stop the run throws (exit code 3 in the
// CLI), writes no final model and says why; with warn it finishes and says so.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { readJsonl } from "../../src/io/sinks/jsonl.js";
import { SESSION_END_TAG } from "../../src/io/sinks/tb_summaries.js";
import { readEventFile } from "../../src/io/sinks/tensorboard.js";
import { readFields } from "../../src/io/sinks/protobuf.js";
import { runGrpo } from "../../src/train/grpo.js";
import { describeStall, StallDetector, type StallSignals, TrainingStalledError } from "../../src/train/stall.js";
import { lines, makeTinyRun, type TinyRun } from "./tiny_run.js";

const healthy = (step: number): StallSignals => ({ step, zeroVarianceFraction: 0.5, unparseableRate: 0.2, gradNorm: 0.3, lossGroups: 2 });

describe("StallDetector", () => {
  test("reports when a condition held for `limit` consecutive steps, once per streak", () => {
    const d = new StallDetector(3);
    const seen: (string[] | null)[] = [];
    const unparseable = (step: number): StallSignals => ({ ...healthy(step), unparseableRate: 1 });
    for (const s of [unparseable(1), unparseable(2), healthy(3), unparseable(4), unparseable(5), unparseable(6), unparseable(7), unparseable(8), unparseable(9)]) seen.push(d.observe(s)?.kinds ?? null);
    // the streak broke at 3; it reaches 3 at step 6; steps 7-9 continue the same streak
    assert.deepEqual(seen, [null, null, null, null, null, ["unparseable"], null, null, null]);
  });

  test("each condition on its own; all that hold are named", () => {
    const zv = new StallDetector(2);
    assert.equal(zv.observe({ ...healthy(1), zeroVarianceFraction: 1 }), null);
    assert.deepEqual(zv.observe({ ...healthy(2), zeroVarianceFraction: 1 }), { kinds: ["zero_variance"], step: 2, steps: 2 });
    const grad = new StallDetector(1);
    assert.equal(grad.observe({ ...healthy(1), gradNorm: 0, lossGroups: 0 }), null, "a zero gradient with no loss group is not a stall of its own");
    assert.deepEqual(grad.observe({ ...healthy(2), gradNorm: 0 })?.kinds, ["zero_gradient"]);
    const all = new StallDetector(2);
    all.observe({ step: 1, zeroVarianceFraction: 1, unparseableRate: 1, gradNorm: 0, lossGroups: 2 });
    assert.deepEqual(all.observe({ step: 2, zeroVarianceFraction: 1, unparseableRate: 1, gradNorm: 0, lossGroups: 2 })?.kinds, ["unparseable", "zero_variance", "zero_gradient"]);
    assert.throws(() => new StallDetector(0), /limit must be an integer >= 1/);
  });

  test("the message names the steps, the conditions and the settings to change", () => {
    const text = describeStall({ kinds: ["unparseable", "zero_variance"], step: 12, steps: 10 }, { example: " F", meanReward: -0.6, truncatedFraction: 1, maxCompletionLength: 1, temperature: 1, numGenerations: 4, zeroVarianceMode: "keep" });
    assert.match(text, /steps 3-12/);
    assert.match(text, /every sampled completion was unparseable \(e\.g\. " F"\)/);
    assert.match(text, /grpo\.max_completion_length \(now 1; 100% of completions hit it\)/);
    assert.match(text, /same reward \(mean -0\.600\)/);
    const zvOnly = describeStall({ kinds: ["zero_variance"], step: 5, steps: 5 }, { meanReward: 1.1, truncatedFraction: 0, maxCompletionLength: 24, temperature: 0.7, numGenerations: 8, zeroVarianceMode: "keep" });
    assert.match(zvOnly, /grpo\.temperature \(now 0\.7\)/);
    assert.match(zvOnly, /grpo\.zero_variance: resample/);
  });
});

describe("GRPO runs where every completion is unparseable", () => {
  let t: TinyRun;
  before(async () => (t = await makeTinyRun("stall")));
  after(() => t.cleanup());
  const unparseable = { max_completion_length: 1, rewards: [{ name: "recall" }, { name: "format" }] };

  test("on_stall stop: the run throws TrainingStalledError after stall_steps, without a final model", async () => {
    const cfg = t.config("stop", { grpo: { ...unparseable, steps: 4, stall_steps: 2, on_stall: "stop" } });
    const out = lines();
    await assert.rejects(runGrpo(cfg, out), (e: unknown) => {
      assert.ok(e instanceof TrainingStalledError, String(e));
      assert.equal(e.exitCode, 3);
      assert.deepEqual(e.stall.kinds, ["unparseable", "zero_variance", "zero_gradient"]);
      assert.equal(e.stall.step, 2);
      assert.match(e.message, /not learning: for 2 steps in a row \(steps 1-2\)/);
      assert.match(e.message, /max_completion_length \(now 1/);
      assert.match(e.message, /without writing a final model/);
      return true;
    });
    const dir = cfg.output_dir;
    assert.equal(fs.existsSync(path.join(dir, "final")), false, "no final model");
    assert.ok(fs.existsSync(path.join(dir, "checkpoints", "step-00000002", "trainer_state.json")), "a checkpoint to resume from with other settings");
    const metrics = readJsonl(path.join(dir, "metrics.jsonl"));
    assert.deepEqual(metrics.map((r) => r.step), [1, 2], "stopped at step 2 of 4");
    for (const r of metrics) {
      assert.equal(r.metrics["batch/unparseable_rate"], 1);
      assert.equal(r.metrics["train/grad_norm"], 0);
    }
    const samples = fs.readFileSync(path.join(dir, "completions.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.ok(samples.length > 0 && samples.every((s) => s.step === 2 && s.parsed === "unparseable"), "the stalled step's completions are logged for inspection");
    const ends = readEventFile(fs.readdirSync(path.join(dir, "tb")).map((f) => path.join(dir, "tb", f))[0]).flatMap((e) => e.values ?? []).filter((v) => v.tag === SESSION_END_TAG);
    assert.equal(ends.length, 1);
    const status = readFields(readFields(ends[0].plugin!.content)[0].value as Uint8Array)[0].value;
    assert.equal(status, 2n, "TensorBoard's HParams dashboard shows the session as failed");
  });

  test("on_stall warn: the run finishes, with a warning and the stall in its result", async () => {
    const cfg = t.config("warn", { grpo: { ...unparseable, steps: 2, stall_steps: 1, on_stall: "warn" } });
    const out = lines();
    const r = await runGrpo(cfg, out);
    assert.ok(r.finalModelDir && fs.existsSync(r.finalModelDir));
    assert.deepEqual(
      r.stalls.map((s) => [s.step, s.kinds]),
      [[1, ["unparseable", "zero_variance", "zero_gradient"]]],
      "reported once: step 2 continues the same streak",
    );
    assert.match(out.text(), /grpo: warning: GRPO is not learning: at step 1/);
  });
});
