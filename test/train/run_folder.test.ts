// Clean runs: what a training run may do to its output folder (refuse a used
// one, --overwrite, --resume dropping what was logged after the checkpoint),
// nothing written before the inputs are checked, and the rules of a resume
// that changes settings (applied and recorded, or refused by name).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { parseYamlConfig } from "../../src/config/load.js";
import { runConfigSchema } from "../../src/config/run_config.js";
import { validate } from "../../src/config/schema.js";
import { readJsonl } from "../../src/io/sinks/jsonl.js";
import { readEventFile } from "../../src/io/sinks/tensorboard.js";
import { lrMultiplier } from "../../src/torch/optim/index.js";
import { runGrpo } from "../../src/train/grpo.js";
import { checkResumeSettings, flattenConfig, resumeRule, ResumeSettingsError } from "../../src/train/resume_settings.js";
import { dropRecordsAfter, OutputDirError, planOutputDir } from "../../src/train/run_dir.js";
import { runSft } from "../../src/train/sft.js";
import { lines, makeTinyRun, quiet, type TinyRun } from "./tiny_run.js";

const README = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../../README.md");

describe("planOutputDir", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-plan-"));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const used = path.join(tmp, "used");
  fs.mkdirSync(path.join(used, "checkpoints"), { recursive: true });
  fs.writeFileSync(path.join(used, "metrics.jsonl"), "");
  const plan = (dir: string, o: Partial<Parameters<typeof planOutputDir>[1]> = {}) => planOutputDir(dir, { command: "sft", resumeStep: null, ...o });

  test("missing or empty: fresh; used without a flag: refused, naming the way out", () => {
    assert.deepEqual(plan(path.join(tmp, "nope")), { kind: "fresh" });
    fs.mkdirSync(path.join(tmp, "empty"));
    assert.deepEqual(plan(path.join(tmp, "empty")), { kind: "fresh" });
    assert.throws(() => plan(used), (e: unknown) => e instanceof OutputDirError && /is not empty \(it holds checkpoints, metrics\.jsonl\).*--resume auto.*--overwrite/.test(e.message));
    fs.writeFileSync(path.join(tmp, "file"), "x");
    assert.throws(() => plan(path.join(tmp, "file")), /is a file, not a folder/);
  });

  test("--resume: resume at the checkpoint's step; no checkpoint in a used folder is refused; with --overwrite refused", () => {
    assert.deepEqual(plan(used, { resume: "auto", resumeStep: 7 }), { kind: "resume", step: 7 });
    assert.deepEqual(plan(path.join(tmp, "nope"), { resume: "auto" }), { kind: "fresh" }, "nothing to resume in an empty folder: a fresh start");
    assert.throws(() => plan(used, { resume: "auto" }), /holds no checkpoint to resume from/);
    assert.throws(() => plan(used, { resume: "auto", overwrite: true }), /exclude each other/);
  });

  test("--overwrite clears only a run folder that holds none of the run's inputs, never the working directory", () => {
    assert.deepEqual(plan(used, { overwrite: true }), { kind: "overwrite" });
    assert.throws(() => plan(used, { overwrite: true, inputs: [["model folder", path.join(used, "final")]] }), /holds the run's model folder/);
    const notRun = path.join(tmp, "photos");
    fs.mkdirSync(notRun);
    fs.writeFileSync(path.join(notRun, "cat.jpg"), "x");
    assert.throws(() => plan(notRun, { overwrite: true }), /does not look like a run folder/);
    assert.throws(() => plan(process.cwd(), { overwrite: true }), /working directory/);
    assert.throws(() => plan(path.dirname(process.cwd()), { overwrite: true }), /working directory, one of its parents/);
  });
});

test("dropRecordsAfter: metrics.jsonl and completions.jsonl lines and tb events after the step go (a torn last line too)", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-drop-"));
  try {
    fs.writeFileSync(path.join(dir, "metrics.jsonl"), [1, 2, 3].map((s) => JSON.stringify({ step: s, time: 0, metrics: { x: s } })).join("\n") + '\n{"step": 4, "ti');
    fs.writeFileSync(path.join(dir, "completions.jsonl"), [2, 3].map((s) => JSON.stringify({ step: s })).join("\n") + "\n");
    const { TensorBoardSink } = await import("../../src/io/sinks/tensorboard.js");
    const tb = new TensorBoardSink(path.join(dir, "tb"));
    for (const s of [1, 2, 3]) tb.log(s, { x: s });
    tb.close();
    assert.equal(dropRecordsAfter(dir, 2), 1 + 1 + 1 + 1, "metrics step 3 and the torn line, completions step 3, the tb event at 3");
    assert.deepEqual(readJsonl(path.join(dir, "metrics.jsonl")).map((r) => r.step), [1, 2]);
    assert.deepEqual(fs.readFileSync(path.join(dir, "completions.jsonl"), "utf8"), '{"step":2}\n');
    assert.deepEqual(readEventFile(tb.path).map((e) => e.step), [0, 1, 2]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe("the resume rules", () => {
  test("every config key falls under a deliberate rule, for both trainers", () => {
    const keys = [...flattenConfig(validate(runConfigSchema, { threads: 1, grpo: { epsilon_high: 0.3 }, lora: { target_modules: ["q_proj"] }, demo: { init_std: 0.1 } })).keys()];
    for (const kind of ["sft", "grpo"] as const) {
      const fallback = keys.filter((k) => resumeRule(k, kind).why.startsWith("no rule"));
      assert.deepEqual(fallback, [], `${kind}: keys without a rule`);
    }
  });

  test("the README's table lists every refused key", () => {
    const readme = fs.readFileSync(README, "utf8");
    const section = readme.slice(readme.indexOf("### Resuming with changed settings"));
    assert.ok(section.length > 0 && readme.includes("### Resuming with changed settings"));
    for (const key of ["model", "seed", "dtype", "data.*", "prompt.*", "lora.*", "lora.dropout", "sft.freeze_vision", "grpo.freeze_vision", "grpo.num_generations", "grpo.stratify"]) {
      assert.ok(section.includes(`\`${key}\``), `README names ${key}`);
    }
    const refused = ["model", "seed", "dtype", "data.path", "prompt.user_prompt", "lora.rank", "grpo.num_generations", "grpo.stratify"].filter((k) => resumeRule(k, "grpo").action === "refuse");
    assert.equal(refused.length, 8);
    assert.equal(resumeRule("lora.dropout", "grpo").action, "apply");
    assert.equal(resumeRule("sft.freeze_vision", "sft").action, "refuse");
    assert.equal(resumeRule("sft.freeze_vision", "grpo").action, "apply", "an SFT key does nothing in GRPO");
    assert.equal(resumeRule("grpo.freeze_vision", "grpo").action, "refuse");
    assert.equal(resumeRule("grpo.freeze_vision", "sft").action, "apply", "a GRPO key does nothing in SFT");
    assert.equal(resumeRule("grpo.num_generations", "sft").action, "apply");
  });

  test("checkResumeSettings: applied changes returned, refused ones named with both values; paths compared resolved", () => {
    const saved = validate(runConfigSchema, { model: "m", data: { path: "d.jsonl" }, grpo: { lr: 1e-5 } }) as unknown as Record<string, unknown>;
    const same = validate(runConfigSchema, { model: path.resolve("m"), data: { path: "./d.jsonl" }, grpo: { lr: 1e-5 } });
    assert.deepEqual(checkResumeSettings(saved, same, "grpo", "ckpt"), []);
    const lr = validate(runConfigSchema, { model: "m", data: { path: "d.jsonl" }, grpo: { lr: 1e-4 } });
    assert.deepEqual(checkResumeSettings(saved, lr, "grpo", "ckpt").map((c) => [c.key, c.from, c.to]), [["grpo.lr", 1e-5, 1e-4]]);
    const bad = validate(runConfigSchema, { model: "m", data: { path: "d.jsonl" }, lora: { rank: 16, target_modules: ["q_proj"] }, grpo: { num_generations: 4 } });
    assert.throws(
      () => checkResumeSettings(saved, bad, "grpo", "ckpt"),
      (e: unknown) =>
        e instanceof ResumeSettingsError && /grpo\.num_generations: 8 in the checkpoint, 4 now/.test(e.message) && /lora\.rank: 8 in the checkpoint, 16 now/.test(e.message) && /lora\.target_modules: \(unset\) in the checkpoint, \["q_proj"\] now/.test(e.message),
    );
  });
});

describe("runs in a used folder", () => {
  let t: TinyRun;
  before(async () => (t = await makeTinyRun("runfolder")));
  after(() => t.cleanup());
  const snapshot = (dir: string) =>
    fs
      .readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => {
        const p = path.join(e.parentPath, e.name);
        return `${path.relative(dir, p)}:${fs.statSync(p).size}:${fs.statSync(p).mtimeMs}`;
      })
      .sort();

  test("a re-run is refused and changes nothing; --overwrite starts afresh", async () => {
    const cfg = t.config("sft-rerun", { sft: { max_steps: 2 } });
    await runSft(cfg, quiet);
    const before = snapshot(cfg.output_dir);
    await assert.rejects(runSft(cfg, quiet), (e: unknown) => e instanceof OutputDirError && /is not empty/.test(e.message));
    assert.deepEqual(snapshot(cfg.output_dir), before, "nothing touched");
    fs.writeFileSync(path.join(cfg.output_dir, "stale.txt"), "from an older run");
    const out = lines();
    await runSft(t.config("sft-rerun", { sft: { max_steps: 1 } }), { ...out, overwrite: true });
    const trainSteps = readJsonl(path.join(cfg.output_dir, "metrics.jsonl")).filter((r) => "train/loss" in r.metrics).map((r) => r.step);
    assert.deepEqual(trainSteps, [1], "a fresh metrics.jsonl, not steps 1, 2, 1");
    assert.equal(fs.existsSync(path.join(cfg.output_dir, "stale.txt")), false);
    assert.deepEqual(fs.readdirSync(path.join(cfg.output_dir, "checkpoints")).sort(), ["latest", "step-00000001"]);
    assert.equal(fs.readdirSync(path.join(cfg.output_dir, "tb")).length, 1, "one event file");
    assert.match(out.text(), /cleared .* \(--overwrite\)/);
  });

  test("nothing is written when the data, the model or a reward module is bad", async () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["bad-data", { data: { path: path.join(t.root, "missing.jsonl") } }, /missing\.jsonl/],
      ["bad-model", { model: path.join(t.root, "no-model") }, /no-model/],
      ["bad-reward", { grpo: { rewards: [{ module: path.join(t.root, "no_reward.mjs") }] } }, /no_reward\.mjs/],
      ["bad-beta", { lora: { enabled: false }, grpo: { beta: 0.1 } }, /beta > 0 needs LoRA/],
    ];
    for (const [name, patch, msg] of cases) {
      const cfg = t.config(name, patch);
      await assert.rejects(name === "bad-data" || name === "bad-model" ? runSft(cfg, quiet) : runGrpo(cfg, quiet), msg, name);
      assert.equal(fs.existsSync(cfg.output_dir), false, `${name}: ${cfg.output_dir} not created`);
    }
  });

  test("--resume from an earlier checkpoint drops what was logged after it, applies a changed lr and records it", async () => {
    const cfg = t.config("sft-resume", { sft: { max_steps: 3, save_every: 1, keep_last: 0, lr: 1e-3 } });
    await runSft(cfg, { ...quiet, stopAfterSteps: 2 });
    assert.deepEqual(readJsonl(path.join(cfg.output_dir, "metrics.jsonl")).filter((r) => "train/lr" in r.metrics).map((r) => r.step), [1, 2]);
    // Continue from step 1 (as after a crash that lost checkpoint 2), with a new learning rate.
    const step1 = path.join(cfg.output_dir, "checkpoints", "step-00000001");
    const out = lines();
    const changed = t.config("sft-resume", { sft: { max_steps: 3, save_every: 1, keep_last: 0, lr: 2e-3 } });
    await runSft(changed, { ...out, resume: step1 });
    const metrics = readJsonl(path.join(cfg.output_dir, "metrics.jsonl")).filter((r) => "train/lr" in r.metrics);
    assert.deepEqual(metrics.map((r) => r.step), [1, 2, 3], "step 2 once: the old record after the checkpoint was dropped");
    // train/lr is the lr after the step's scheduler update; cosine over 3 steps, no warmup.
    const lrAt = (base: number, step: number) => base * lrMultiplier("cosine", step, { warmupSteps: 0, totalSteps: 3 });
    assert.ok(Math.abs(metrics[0].metrics["train/lr"] - lrAt(1e-3, 1)) < 1e-12, "step 1 ran with the old lr");
    assert.ok(Math.abs(metrics[1].metrics["train/lr"] - lrAt(2e-3, 2)) < 1e-12, `step 2 with the new one: ${metrics[1].metrics["train/lr"]}`);
    assert.match(out.text(), /sft: resume: sft\.lr: 0\.001 -> 0\.002 from step 2/);
    const saved = fs.readFileSync(path.join(cfg.output_dir, "sft_config.yaml"), "utf8");
    assert.match(saved, /^# resumed at step 1 from .*step-00000001; changed: sft\.lr: 0\.001 -> 0\.002 from step 2$/m);
    assert.equal((parseYamlConfig(saved).data.sft as { lr: number }).lr, 2e-3);
    const ckpt = parseYamlConfig(fs.readFileSync(path.join(cfg.output_dir, "checkpoints", "step-00000003", "config.yaml"), "utf8")).data;
    assert.equal((ckpt.sft as { lr: number }).lr, 2e-3, "the checkpoint records the lr it ran with");
    // The tb events of the first run's step 2 are gone too.
    const tbSteps = fs.readdirSync(path.join(cfg.output_dir, "tb")).flatMap((f) => readEventFile(path.join(cfg.output_dir, "tb", f)).filter((e) => e.values?.some((v) => v.tag === "train/loss")).map((e) => e.step));
    assert.deepEqual(tbSteps.sort(), [1, 2, 3]);
  });

  test("a resume that changes a key that cannot change is refused by name, and writes nothing", async () => {
    const cfg = t.config("sft-refuse", { sft: { max_steps: 2 } });
    await runSft(cfg, { ...quiet, stopAfterSteps: 1 });
    const before = snapshot(cfg.output_dir);
    await assert.rejects(runSft(t.config("sft-refuse", { sft: { max_steps: 2 }, lora: { rank: 2 } }), { ...quiet, resume: "auto" }), (e: unknown) => e instanceof ResumeSettingsError && /lora\.rank: 4 in the checkpoint, 2 now/.test(e.message));
    assert.deepEqual(snapshot(cfg.output_dir), before);
  });

  test("GRPO: num_generations refused; a changed grpo.lr takes effect from the resumed step", async () => {
    const grpo = { steps: 2, max_completion_length: 2, lr: 1e-3, on_stall: "warn", schedule: "constant" };
    const cfg = t.config("grpo-resume", { grpo });
    await runGrpo(cfg, { ...quiet, stopAfterSteps: 1 });
    await assert.rejects(runGrpo(t.config("grpo-resume", { grpo: { ...grpo, num_generations: 2 } }), { ...quiet, resume: "auto" }), /grpo\.num_generations: 4 in the checkpoint, 2 now/);
    const r = await runGrpo(t.config("grpo-resume", { grpo: { ...grpo, lr: 3e-3 } }), { ...quiet, resume: "auto" });
    assert.equal(r.steps, 2);
    const lrs = readJsonl(path.join(cfg.output_dir, "metrics.jsonl")).map((x) => [x.step, x.metrics["train/lr"]]);
    assert.deepEqual(lrs, [
      [1, 1e-3],
      [2, 3e-3],
    ]);
  });
});
