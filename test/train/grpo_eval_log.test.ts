// GRPO's held-out evaluation and sample completions:
// - eval/recall, eval/fpr, eval/unparseable_rate every eval_every steps, in
//   metrics.jsonl and TensorBoard, equal to `vlm-grpo eval`'s figures for the
//   saved adapter on the same images (the same classification path);
// - evaluating does not change training: losses and rewards equal a run
//   without evaluation, LoRA dropout on (so a stray draw from the random
//   generator would show);
// - completions.jsonl records: rewards per function summing (with their
//   weights) to the total, advantages = reward - group mean (scale_rewards
//   none), labels of the prompt; the same as a TensorBoard text table;
// - the resolved config as TensorBoard hparams.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { loadSplits } from "../../src/data/splits_from_config.js";
import { evaluateModel } from "../../src/eval/run_eval.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { readJsonl } from "../../src/io/sinks/jsonl.js";
import { readFields } from "../../src/io/sinks/protobuf.js";
import { decodeStringTensor, SESSION_START_TAG } from "../../src/io/sinks/tb_summaries.js";
import { readEventFile } from "../../src/io/sinks/tensorboard.js";
import type { CompletionRecord } from "../../src/train/completion_samples.js";
import { completionsMarkdown, pickCompletionRows } from "../../src/train/completion_samples.js";
import { runGrpo, type GrpoResult } from "../../src/train/grpo.js";
import { heldOutSample } from "../../src/train/held_out_eval.js";
import { dispose } from "../../src/torch/index.js";
import { LENGTH_REWARD, makeTinyRun, quiet, type TinyRun } from "./tiny_run.js";

let t: TinyRun;
let withEval: GrpoResult;
let without: GrpoResult;
const REWARDS = [{ module: LENGTH_REWARD }, { name: "format", weight: 0.5 }];
const G = 4;
const PROMPTS = 2;

before(async () => {
  t = await makeTinyRun("grpo-eval");
  const base = { steps: 2, prompts_per_step: PROMPTS, num_generations: G, scale_rewards: "none", rewards: REWARDS };
  withEval = await runGrpo(t.config("with-eval", { grpo: { ...base, eval_every: 1, eval_examples: 4, final_eval: true, log_completions_every: 1, log_completions_count: 100 } }), quiet);
  without = await runGrpo(t.config("without", { grpo: { ...base, eval_every: 0, final_eval: false, log_completions_every: 0 } }), quiet);
});
after(() => t.cleanup());

describe("held-out evaluation during GRPO", () => {
  test("eval/* at every eval_every step (the final eval not repeated), in metrics.jsonl and TensorBoard", () => {
    const dir = withEval.runDir;
    const evalRecords = readJsonl(path.join(dir, "metrics.jsonl")).filter((r) => "eval/n" in r.metrics);
    assert.deepEqual(evalRecords.map((r) => r.step), [1, 2]);
    for (const r of evalRecords) {
      assert.equal(r.metrics["eval/n"], 4);
      for (const k of ["eval/recall", "eval/fpr", "eval/unparseable_rate"]) assert.ok(r.metrics[k] >= 0 && r.metrics[k] <= 1, `${k} = ${r.metrics[k]}`);
    }
    const tbFile = path.join(dir, "tb", fs.readdirSync(path.join(dir, "tb"))[0]);
    const tbRecall = readEventFile(tbFile).flatMap((e) => (e.values ?? []).filter((v) => v.tag === "eval/recall").map((v) => [e.step, v.simple_value]));
    assert.deepEqual(tbRecall, evalRecords.map((r) => [r.step, Math.fround(r.metrics["eval/recall"])]));
    assert.deepEqual(withEval.evals.map((e) => e.step), [1, 2]);
    assert.equal(without.evals.length, 0);
  });

  test("the last evaluation equals `eval` of the saved adapter on the same val images", async () => {
    const cfg = t.config("with-eval", { grpo: { eval_examples: 4 } });
    const splits = await loadSplits(cfg.data);
    const sample = heldOutSample(splits.val, 4, cfg.seed);
    assert.equal(sample.length, 4);
    const ref = await evaluateModel(cfg, { name: "ref", model: t.modelDir, lora: withEval.finalModelDir + "-adapter" }, sample, { progress: false });
    const last = withEval.evals[1].metrics;
    assert.equal(last["eval/recall"], ref.metrics.recall ?? undefined);
    assert.equal(last["eval/fpr"], ref.metrics.fpr ?? undefined);
    assert.equal(last["eval/unparseable_rate"], ref.metrics.unparseable_rate ?? undefined);
  });

  test("evaluating does not change training (LoRA dropout on): losses, rewards and the trained adapter equal a run without it", () => {
    assert.deepEqual(
      withEval.history.map((h) => [h.loss, h.rewardMean]),
      without.history.map((h) => [h.loss, h.rewardMean]),
    );
    // The loss value alone would not show a changed dropout mask (the ratio is 1 at num_iterations 1); the weights would.
    const a = loadSafetensors(path.join(withEval.finalModelDir + "-adapter", "adapter_model.safetensors"));
    const b = loadSafetensors(path.join(without.finalModelDir + "-adapter", "adapter_model.safetensors"));
    try {
      assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
      const differ = [...a].filter(([k, x]) => Buffer.compare(Buffer.from(x.toBytes()), Buffer.from(b.get(k)!.toBytes())) !== 0).map(([k]) => k);
      assert.deepEqual(differ, [], "bit-identical adapters");
      assert.ok([...a].some(([k, x]) => k.includes("lora_B") && (x.abs().sum().item() as number) > 0), "and they did train");
    } finally {
      dispose([...a.values(), ...b.values()]);
    }
  });

  test("heldOutSample: a fixed seeded sample, the whole split for 0", () => {
    const xs = Array.from({ length: 10 }, (_, i) => ({ id: String(i), image: { path: "x" }, labels: [], source: { file: "m" } }));
    const a = heldOutSample(xs, 4, 7).map((x) => x.id);
    assert.deepEqual(heldOutSample(xs, 4, 7).map((x) => x.id), a);
    assert.equal(new Set(a).size, 4);
    assert.notDeepEqual(heldOutSample(xs, 4, 8).map((x) => x.id), a, "another seed, another sample");
    assert.equal(heldOutSample(xs, 0, 7).length, 10);
  });
});

describe("sample completions", () => {
  const records = (): CompletionRecord[] => fs.readFileSync(path.join(withEval.runDir, "completions.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));

  test("every completion of each step, with rewards that add up and group-relative advantages", async () => {
    const rs = records();
    assert.deepEqual([...new Set(rs.map((r) => r.step))], [1, 2]);
    assert.equal(rs.length, 2 * PROMPTS * G);
    const splits = await loadSplits(t.config("x").data);
    const byId = new Map(splits.train.map((e) => [e.id, e]));
    for (const r of rs) {
      assert.deepEqual(Object.keys(r.rewards), ["length_reward", "format"]);
      assert.ok(Math.abs(r.reward! - (r.rewards.length_reward! + 0.5 * r.rewards.format!)) < 1e-12, "total = length + 0.5 * format");
      assert.ok(Math.abs(r.rewards.length_reward! - r.completion.length / 10) < 1e-12, "the length reward of the text shown");
      assert.deepEqual(r.labels, byId.get(r.prompt_id)!.labels, "the prompt's labels");
      assert.ok(["safe", "offensive", "unparseable"].includes(r.parsed));
    }
    for (const step of [1, 2]) {
      for (let g = 0; g < PROMPTS; g++) {
        const group = rs.filter((r) => r.step === step && r.group === g);
        assert.equal(group.length, G);
        const mean = group.reduce((s, r) => s + r.reward!, 0) / G;
        for (const r of group) assert.ok(Math.abs(r.advantage - (r.reward! - mean)) < 1e-9, `advantage ${r.advantage} vs ${r.reward! - mean}`);
      }
    }
  });

  test("TensorBoard gets the same completions as a text table per logged step, and the config as hparams", () => {
    const dir = withEval.runDir;
    const events = readEventFile(path.join(dir, "tb", fs.readdirSync(path.join(dir, "tb"))[0]));
    const texts = events.flatMap((e) => (e.values ?? []).filter((v) => v.tag === "completions").map((v) => [e.step, v] as const));
    assert.deepEqual(texts.map(([s]) => s), [1, 2]);
    for (const [step, v] of texts) {
      assert.equal(v.plugin!.name, "text");
      assert.deepEqual(decodeStringTensor(v.tensor!), [completionsMarkdown(records().filter((r) => r.step === step))]);
    }
    const start = events.flatMap((e) => e.values ?? []).filter((v) => v.tag === SESSION_START_TAG);
    assert.equal(start.length, 1);
    const entries = readFields(readFields(start[0].plugin!.content)[0].value as Uint8Array).filter((f) => f.field === 1);
    const keys = entries.map((f) => Buffer.from(readFields(f.value as Uint8Array)[0].value as Uint8Array).toString());
    for (const k of ["grpo.eval_every", "grpo.lr", "lora.rank", "data.categories", "model"]) assert.ok(keys.includes(k), `hparams has ${k}`);
  });

  test("pickCompletionRows takes one per group first; completionsMarkdown keeps each completion in its cell", () => {
    assert.deepEqual(pickCompletionRows(3, 4, 5), [0, 4, 8, 1, 5]);
    assert.deepEqual(pickCompletionRows(2, 2, 10), [0, 2, 1, 3]);
    const md = completionsMarkdown([{ step: 1, prompt_id: "a|b", labels: [], group: 0, index_in_group: 0, completion: "x|y\nz`", parsed: "unparseable", rewards: { r: null }, reward: null, advantage: 0.123456 }]);
    assert.equal(md.split("\n").length, 3, "header, rule, one row: the newline did not break the row");
    assert.match(md, /a\\\|b/);
    assert.match(md, /`x\\\|y ⏎ z'`/);
    assert.match(md, /\| n\/a \| n\/a \| 0\.1235 \|$/);
  });
});
