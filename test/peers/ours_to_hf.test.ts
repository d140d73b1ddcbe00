// ours -> transformers / PEFT: folders we write load in the real libraries.
//   - init-model (float32 and bfloat16), savePretrained in 4 shards, SFT full
//     fine-tuning, SFT with LoRA (merged) and GRPO with LoRA (merged), all made
//     with our `vlm-grpo` CLI on a tiny synthetic set, load with
//     AutoModelForImageTextToText.from_pretrained + AutoProcessor.from_pretrained
//     with no missing / unexpected / mismatched keys and no loading message
//     about keys; transformers' logits (eager, float32) on a left-padded batch
//     with images equal ours within 1e-5 (max abs over real positions);
//   - the LoRA adapter folders load with PeftModel.from_pretrained: every
//     stored tensor is what PEFT holds (bit for bit), and PEFT's logits (base +
//     adapter, unmerged) equal ours for the merged folder within 1e-5;
//   - TensorBoard's EventAccumulator reads the SFT and GRPO runs' event files:
//     every tag and step of metrics.jsonl, float32-rounded values, same wall time.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { loadPretrained, savePretrained } from "../../src/models/index.js";
import { peerSkip, ROOT, runPython, scratch } from "./helpers/bridge.js";
import { vlmGrpo } from "./helpers/cli.js";
import { assertPeftAdapterLoaded, compareFolderLogits as compareLogits, KEY_MESSAGE, type PeftAdapterCheck, TINY_SFT, writeRunConfig } from "./helpers/folders.js";
import { assertTbMatchesJsonl, type TbRun } from "./helpers/tb_compare.js";

const LOGITS_ATOL = 1e-5;

interface ModelCheck {
  class: string;
  processor_class: string;
  image_processor_class: string;
  loading_info: Record<string, string[]>;
  load_messages: string[];
  processor_messages: string[];
  tied: boolean;
  config_dtype: string;
  file: string;
}
interface AdapterCheck extends PeftAdapterCheck {
  base: string;
  target_modules: string | string[];
}

const skip = peerSkip();
const work = scratch("vlm-peers-ours-");
after(work.cleanup);
const dirs: Record<string, string> = {};
let models: Record<string, ModelCheck> = {};
let adapters: Record<string, AdapterCheck> = {};
let tbRuns: Record<string, TbRun> = {};

before(async () => {
  if (skip) return;
  const w = (n: string) => path.join(work.dir, n);
  vlmGrpo(["init-model", "--arch", "idefics3", "--preset", "tiny", "--out", w("init"), "--seed", "1", "--init-std", "0.1"]);
  vlmGrpo(["init-model", "--arch", "idefics3", "--preset", "tiny", "--out", w("init-bf16"), "--seed", "2", "--init-std", "0.1", "--dtype", "bfloat16"]);
  const { model } = await loadPretrained(w("init"));
  try {
    await savePretrained(model, w("sharded"), { maxShardSize: 300_000, copyFilesFrom: w("init") });
  } finally {
    model.dispose();
  }
  vlmGrpo(["data", "synth", "--out", w("data"), "--n", "24", "--image-size", "32", "--seed", "1"]);
  const data = path.join(w("data"), "manifest.jsonl");
  const sft = { sft: TINY_SFT };
  const writeConfig = (name: string, model: string, data: string, lora: boolean, extra: Record<string, unknown>) => writeRunConfig(work.dir, name, model, data, lora, extra);
  vlmGrpo(["sft", "--config", writeConfig("sft-full", w("init"), data, false, { sft: { ...sft.sft, freeze_vision: false } })]);
  vlmGrpo(["sft", "--config", writeConfig("sft-lora", w("init"), data, true, sft)]);
  // A length reward gives every group of a random model reward variance, hence a gradient.
  const lengthReward = path.join(ROOT, "test/fixtures/rewards/length_reward.mjs");
  const grpo = { grpo: { steps: 2, prompts_per_step: 2, num_generations: 4, max_completion_length: 6, lr: 1e-2, log_every: 1, beta: 0.04, rewards: [{ module: lengthReward }] } };
  vlmGrpo(["grpo", "--config", writeConfig("grpo-lora", w("sft-lora/final"), data, true, grpo)]);

  Object.assign(dirs, {
    "init-model": w("init"),
    "init-model-bf16": w("init-bf16"),
    "savePretrained-sharded": w("sharded"),
    "sft-full": w("sft-full/final"),
    "sft-lora-merged": w("sft-lora/final"),
    "grpo-lora-merged": w("grpo-lora/final"),
  });
  const adapterDirs = { "sft-lora-adapter": w("sft-lora/final-adapter"), "grpo-lora-adapter": w("grpo-lora/final-adapter") };
  const res = runPython<{ models: Record<string, ModelCheck>; adapters: Record<string, AdapterCheck> }>(
    "idefics3_ours_check.py",
    { models: Object.entries(dirs).map(([name, dir]) => ({ name, dir })), adapters: Object.entries(adapterDirs).map(([name, dir]) => ({ name, dir })), out: w("py") },
    { dir: work.dir },
  ).response;
  models = res.models;
  adapters = res.adapters;
  tbRuns = runPython<{ runs: Record<string, TbRun> }>("tensorboard_peer.py", { logdirs: [w("sft-lora/tb"), w("grpo-lora/tb")] }, { dir: work.dir }).response.runs;
});

describe("our folders in transformers", { skip }, () => {
  for (const name of ["init-model", "init-model-bf16", "savePretrained-sharded", "sft-full", "sft-lora-merged", "grpo-lora-merged"]) {
    test(`${name}: from_pretrained with no key complaints, processor loads, logits within ${LOGITS_ATOL}`, async (t) => {
      const m = models[name];
      assert.equal(m.class, "Idefics3ForConditionalGeneration");
      assert.equal(m.processor_class, "Idefics3Processor");
      for (const k of ["missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"]) assert.deepEqual(m.loading_info[k], [], `${name}: ${k}`);
      const complaints = [...m.load_messages, ...m.processor_messages].filter((x) => KEY_MESSAGE.test(x));
      assert.deepEqual(complaints, [], `${name}: loading messages`);
      if (m.load_messages.length + m.processor_messages.length > 0) t.diagnostic(`other loading messages: ${[...m.load_messages, ...m.processor_messages].join(" | ")}`);
      if (name === "init-model-bf16") assert.equal(m.config_dtype, "bfloat16");
      const d = await compareLogits(dirs[name], m.file);
      t.diagnostic(`max |ours - transformers| ${d.toExponential(2)}`);
      assert.ok(d <= LOGITS_ATOL, `max |ours - transformers eager| = ${d} > ${LOGITS_ATOL}`);
    });
  }
});

describe("our LoRA adapters in PEFT", { skip }, () => {
  for (const [name, merged] of [
    ["sft-lora-adapter", "sft-lora-merged"],
    ["grpo-lora-adapter", "grpo-lora-merged"],
  ]) {
    test(`${name}: PeftModel.from_pretrained holds every stored tensor; base + adapter logits = our merged folder within ${LOGITS_ATOL}`, async (t) => {
      const a = adapters[name];
      assertPeftAdapterLoaded(a);
      const d = await compareLogits(dirs[merged], a.file);
      t.diagnostic(`target modules ${String(a.target_modules)}; max |ours merged - PEFT| ${d.toExponential(2)}`);
      assert.ok(d <= LOGITS_ATOL, `max |ours merged - PEFT base+adapter| = ${d} > ${LOGITS_ATOL}`);
    });
  }
});

describe("TensorBoard reads the training runs' event files", { skip }, () => {
  for (const run of ["sft-lora", "grpo-lora"]) {
    test(`${run}: every tag and step of metrics.jsonl, values float32-rounded, same wall time`, (t) => {
      const tb = tbRuns[path.join(work.dir, run, "tb")];
      assert.equal(tb.files.length, 1, "one event file");
      const n = assertTbMatchesJsonl(tb, path.join(work.dir, run, "metrics.jsonl"));
      t.diagnostic(`${n} values compared over ${Object.keys(tb.scalars).length} tags`);
    });
  }
});
