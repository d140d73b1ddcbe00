// grpo.select_best: the final model is the held-out evaluation that best fits
// the FPR budget (highest val recall within select_max_fpr, else the lowest
// FPR), its weights kept in <run>/best/ and carried across a resume; without
// evaluations to choose among it is refused before anything is written.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { dispose } from "../../src/torch/index.js";
import { beatsBest, type HeldOutFigures } from "../../src/train/best_held_out.js";
import { type GrpoResult, runGrpo } from "../../src/train/grpo.js";
import { LENGTH_REWARD, makeTinyRun, quiet, type TinyRun } from "./tiny_run.js";

describe("beatsBest", () => {
  const f = (step: number, recall: number, fpr: number): HeldOutFigures => ({ step, recall, fpr });
  test("within the budget the higher recall wins, then the lower FPR; the first evaluation always counts", () => {
    assert.equal(beatsBest(f(1, 0.5, 0.2), null, 0.15), true);
    assert.equal(beatsBest(f(2, 0.9, 0.14), f(1, 0.8, 0.05), 0.15), true);
    assert.equal(beatsBest(f(2, 0.8, 0.04), f(1, 0.8, 0.05), 0.15), true);
    assert.equal(beatsBest(f(2, 0.8, 0.05), f(1, 0.8, 0.05), 0.15), false, "a tie keeps the earlier one");
    assert.equal(beatsBest(f(2, 0.7, 0.01), f(1, 0.8, 0.15), 0.15), false, "the budget's edge counts as within");
  });
  test("within the budget beats over it whatever the recall; over it the lower FPR wins", () => {
    assert.equal(beatsBest(f(2, 0.99, 0.16), f(1, 0.1, 0.15), 0.15), false);
    assert.equal(beatsBest(f(2, 0.1, 0.15), f(1, 0.99, 0.16), 0.15), true);
    assert.equal(beatsBest(f(2, 0.5, 0.3), f(1, 0.9, 0.4), 0.15), true);
    assert.equal(beatsBest(f(2, 0.9, 0.3), f(1, 0.5, 0.3), 0.15), true);
  });
});

describe("GRPO with select_best", () => {
  let t: TinyRun;
  let full: GrpoResult;
  const STEPS = 4;
  // Full fine-tuning (weights compared directly), an evaluation every step on the whole val split; the
  // length reward, since a random model's answers are all unparseable and would give the recall reward no variance.
  const patch = (maxFpr: number) => ({ lora: { enabled: false }, grpo: { steps: STEPS, lr: 5e-3, eval_every: 1, eval_examples: 0, select_best: true, select_max_fpr: maxFpr, rewards: [{ module: LENGTH_REWARD }], save_every: 1, keep_last: 0 } });
  before(async () => {
    t = await makeTinyRun("grpo-best");
    full = await runGrpo(t.config("full", patch(0.5)), quiet);
  });
  after(() => t.cleanup());

  const weights = (file: string) => loadSafetensors(file);
  const same = (a: string, b: string): boolean => {
    const x = weights(a);
    const y = weights(b);
    try {
      return [...x].every(([k, v]) => Buffer.compare(Buffer.from(v.toBytes()), Buffer.from(y.get(k)!.toBytes())) === 0);
    } finally {
      dispose([...x.values(), ...y.values()]);
    }
  };

  test("the selected step is the best logged evaluation by the rule, and the final model has its weights", () => {
    assert.equal(full.evals.length, STEPS);
    let expect: HeldOutFigures | null = null;
    for (const e of full.evals) {
      const cand = { step: e.step, recall: e.metrics["eval/recall"], fpr: e.metrics["eval/fpr"] };
      assert.ok(Number.isFinite(cand.recall) && Number.isFinite(cand.fpr), `step ${e.step}: the val split has both classes`);
      if (beatsBest(cand, expect, 0.5)) expect = cand;
    }
    assert.deepEqual(full.selected, expect);
    const runDir = t.config("full").output_dir;
    const finalFile = path.join(full.finalModelDir!, "model.safetensors");
    assert.ok(same(finalFile, path.join(runDir, "best", "model.safetensors")), "the final model is not the kept best");
    // The step's own checkpoint holds the same weights; a later step's does not (training moved them).
    const ckpt = (s: number) => path.join(runDir, "checkpoints", `step-${String(s).padStart(8, "0")}`, "model.safetensors");
    assert.ok(same(finalFile, ckpt(expect!.step)), `final != checkpoint of the selected step ${expect!.step}`);
    if (expect!.step < STEPS) assert.ok(!same(finalFile, ckpt(STEPS)), "the final model is the last step's, not the selected one's");
    const kept = JSON.parse(fs.readFileSync(path.join(runDir, "best", "held_out.json"), "utf8"));
    assert.equal(kept.step, expect!.step);
  });

  test("interrupted and resumed: the same selection and final weights", async () => {
    const first = await runGrpo(t.config("resumed", patch(0.5)), { ...quiet, stopAfterSteps: 2 });
    assert.equal(first.stoppedEarly, true);
    const rest = await runGrpo(t.config("resumed", patch(0.5)), { ...quiet, resume: "auto" });
    assert.deepEqual(rest.selected, full.selected);
    assert.ok(same(path.join(rest.finalModelDir!, "model.safetensors"), path.join(full.finalModelDir!, "model.safetensors")));
  });

  test("without evaluations to choose among it is refused before the run starts", async () => {
    const cfg = t.config("no-eval", { grpo: { select_best: true, eval_every: 0 } });
    await assert.rejects(runGrpo(cfg, quiet), /select_best needs grpo.eval_every > 0/);
    assert.equal(fs.existsSync(cfg.output_dir), false, "nothing written");
  });
});
