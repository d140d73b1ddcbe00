// Resume that survives damage: `--resume auto` takes the newest intact
// checkpoint (truncated optimizer state, an empty adapter, a broken
// trainer_state.json or a missing file make it fall back to the previous
// one, saying which and why); a complete checkpoint is found even when
// `latest` lags behind; temporary folders of interrupted saves are removed
// at start (a backup whose target is gone is put back); resuming with
// another lora.rank names the checkpoint, the tensor and both shapes.
// Before: resolveResume trusted `latest`, so each damaged case failed the
// resume, the lagging case resumed from the older step, temporaries stayed,
// and the rank mismatch was a bare aten::copy_ size error.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { validate } from "../../src/config/schema.js";
import { type RunConfig, runConfigSchema } from "../../src/config/run_config.js";
import { synthesizeDataset } from "../../src/data/synth/writer.js";
import { initModel } from "../../src/models/init_model.js";
import { checkCheckpoint } from "../../src/train/checkpoint_check.js";
import { removeStaleTemporaries, resolveResume } from "../../src/train/checkpoint.js";
import { runGrpo } from "../../src/train/grpo.js";

const quiet = { log: () => {}, progress: false };
let root = "";
let dataPath = "";
let modelDir = "";
/** A finished 3-step run with a checkpoint at every step (copied per test). */
let pristine = "";

function config(out: string, patch: { lora?: object; grpo?: object } = {}): RunConfig {
  return validate(
    runConfigSchema,
    {
      model: modelDir,
      output_dir: out,
      seed: 3,
      data: { path: dataPath },
      prompt: { system_prompt: "", user_prompt: "Categories: {categories}?" },
      lora: { enabled: true, rank: 4, alpha: 8, dropout: 0, ...patch.lora },
      grpo: { steps: 3, prompts_per_step: 2, num_generations: 2, max_completion_length: 4, save_every: 1, keep_last: 0, log_every: 1, rewards: [{ name: "recall" }, { name: "format" }], ...patch.grpo },
    },
    { file: "test config" },
  );
}

const step = (n: number) => `step-${String(n).padStart(8, "0")}`;

function copyRun(name: string): string {
  const dst = path.join(root, name);
  fs.cpSync(pristine, dst, { recursive: true });
  return dst;
}

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-resume-damage-"));
  dataPath = (await synthesizeDataset({ outDir: path.join(root, "data"), n: 24, imageSize: 32, seed: 1 })).manifest;
  modelDir = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "model"), seed: 2 })).dir;
  pristine = path.join(root, "pristine");
  const r = await runGrpo(config(pristine), quiet);
  assert.equal(r.steps, 3);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

describe("resume --auto picks the newest intact checkpoint", () => {
  const damages: [string, (ckpt: string) => void, RegExp][] = [
    [
      "a truncated optimizer state",
      (c) => {
        const f = path.join(c, "optimizer.safetensors");
        fs.truncateSync(f, Math.floor(fs.statSync(f).size / 2));
      },
      /optimizer\.safetensors: .*truncated/,
    ],
    ["an empty adapter", (c) => fs.writeFileSync(path.join(c, "adapter", "adapter_model.safetensors"), Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("{}")])), /adapter\/adapter_model\.safetensors holds no tensors/],
    ["a trainer_state.json cut short", (c) => fs.writeFileSync(path.join(c, "trainer_state.json"), '{"kind": "grpo", "st'), /trainer_state\.json cannot be read: .*JSON/],
    ["a missing rng file", (c) => fs.rmSync(path.join(c, "rng.safetensors")), /rng\.safetensors is missing/],
  ];
  for (const [what, damage, reason] of damages) {
    test(`${what} in the newest checkpoint: falls back to the previous one and says why`, () => {
      const run = copyRun(`damaged-${what.replace(/\W+/g, "-")}`);
      damage(path.join(run, "checkpoints", step(3)));
      const lines: string[] = [];
      const ref = resolveResume("auto", run, (l) => lines.push(l));
      assert.equal(ref?.step, 2);
      const text = lines.join("\n");
      assert.match(text, new RegExp(`resume: skipping .*${step(3)}: `));
      assert.match(text, reason);
      assert.match(text, new RegExp(`resume: using .*${step(2)}, the newest intact checkpoint`));
      // Named explicitly, the damaged checkpoint is refused with the reason (no silent substitute).
      assert.throws(() => resolveResume(path.join(run, "checkpoints", step(3)), run), new RegExp(`checkpoint .*${step(3)} is damaged: `));
    });
  }

  test("the fallback resumes and finishes the run", async () => {
    const run = copyRun("resume-after-damage");
    fs.truncateSync(path.join(run, "checkpoints", step(3), "optimizer.safetensors"), 100);
    fs.rmSync(path.join(run, "final"), { recursive: true, force: true });
    fs.rmSync(path.join(run, "final-adapter"), { recursive: true, force: true });
    const lines: string[] = [];
    const r = await runGrpo(config(run, { grpo: { steps: 4 } }), { progress: false, resume: "auto", log: (l) => lines.push(l) });
    assert.match(lines.join("\n"), new RegExp(`grpo: resumed from .*${step(2)} at step 2`));
    assert.equal(r.steps, 4);
    assert.deepEqual(r.history.map((h) => h.step), [3, 4]);
    assert.ok(fs.existsSync(path.join(r.finalModelDir!, "config.json")));
  });

  test("every checkpoint damaged: the error lists each one and why", () => {
    const run = copyRun("all-damaged");
    for (const n of [1, 2, 3]) fs.rmSync(path.join(run, "checkpoints", step(n), "config.yaml"));
    assert.throws(() => resolveResume("auto", run), /no intact checkpoint in .*step-00000003: config\.yaml is missing; step-00000002: config\.yaml is missing; step-00000001: config\.yaml is missing/);
  });

  test("a checkpoint completed just before a kill is found although `latest` still names the previous one", () => {
    const run = copyRun("latest-lags");
    fs.writeFileSync(path.join(run, "checkpoints", "latest"), step(2) + "\n");
    const lines: string[] = [];
    assert.equal(resolveResume("auto", run, (l) => lines.push(l))?.step, 3);
    assert.match(lines.join("\n"), /checkpoints\/latest names step-00000002, but step-00000003 is newer and complete/);
    // A run folder given to --resume is searched the same way.
    assert.equal(resolveResume(run, path.join(root, "elsewhere"))?.step, 3);
  });

  test("checkCheckpoint: an intact checkpoint passes; a step that disagrees with its folder does not", () => {
    const run = copyRun("check");
    assert.equal(checkCheckpoint(path.join(run, "checkpoints", step(2)), 2), null);
    assert.match(checkCheckpoint(path.join(run, "checkpoints", step(2)), 7)!, /trainer_state\.json says step 2, the folder's name says 7/);
  });
});

describe("stale temporaries", () => {
  test("removed at start when their process is gone; a lone backup is put back; a live process's are kept", async () => {
    const run = copyRun("stale");
    const ck = path.join(run, "checkpoints");
    const deadPid = 2 ** 22 + 12345; // above Linux's pid_max default: no such process
    const staleCkpt = path.join(ck, `.${step(4)}.tmp-${deadPid}-0123abcd`);
    fs.mkdirSync(staleCkpt);
    fs.writeFileSync(path.join(staleCkpt, "optimizer.safetensors"), "partial");
    const staleFile = path.join(run, `.grpo_config.yaml.tmp-${deadPid}-89abcdef`);
    fs.writeFileSync(staleFile, "partial");
    // A kill between writeFolderAtomic's two renames: the old step-3 folder sits under its backup name.
    const backup = path.join(ck, `.${step(3)}.old-${deadPid}-00ff00ff`);
    fs.renameSync(path.join(ck, step(3)), backup);
    const liveTmp = path.join(ck, `.${step(5)}.tmp-${process.ppid}-deadbeef`);
    fs.mkdirSync(liveTmp);
    const lines = removeStaleTemporaries(run);
    assert.equal(fs.existsSync(staleCkpt), false);
    assert.equal(fs.existsSync(staleFile), false);
    assert.equal(fs.existsSync(backup), false);
    assert.equal(checkCheckpoint(path.join(ck, step(3)), 3), null, "step 3 restored from its backup, intact");
    assert.equal(fs.existsSync(liveTmp), true, "a temporary of a running process is left alone");
    assert.equal(lines.length, 3);
    assert.match(lines.join("\n"), /restored .*step-00000003 from the backup of an interrupted save/);
    fs.rmSync(liveTmp, { recursive: true });
    // A run start cleans up too (and says so).
    fs.mkdirSync(staleCkpt);
    const log: string[] = [];
    await runGrpo(config(run, { grpo: { steps: 4 } }), { progress: false, resume: "auto", log: (l) => log.push(l) });
    assert.equal(fs.existsSync(staleCkpt), false);
    assert.match(log.join("\n"), /grpo: removed .*\.step-00000004\.tmp-.* left by an interrupted save/);
  });
});

test("resuming with another lora.rank names the checkpoint and the key; adapters that still do not fit name the tensor and both shapes", async () => {
  const run = copyRun("rank");
  // The settings check (resume_settings.ts) refuses the changed key before anything is loaded.
  await assert.rejects(runGrpo(config(run, { lora: { rank: 8 }, grpo: { steps: 5 } }), { ...quiet, resume: "auto" }), (e: Error) => {
    assert.match(e.message, new RegExp(`checkpoint .*${step(3)} was trained with other values`));
    assert.match(e.message, /lora\.rank: 4 in the checkpoint, 8 now/);
    return true;
  });
  // A checkpoint whose recorded config says rank 8 while its adapter holds rank 4 (edited by hand, or
  // written by another tool) passes that check; the restore then names the tensor and both shapes.
  const cfgFile = path.join(run, "checkpoints", step(3), "config.yaml");
  fs.writeFileSync(cfgFile, fs.readFileSync(cfgFile, "utf8").replace(/^(lora:[ \t]*\n(?:[ \t]+.*\n)*?[ \t]+rank:[ \t]*)4/m, "$18"));
  await assert.rejects(runGrpo(config(run, { lora: { rank: 8 }, grpo: { steps: 5 } }), { ...quiet, resume: "auto" }), (e: Error) => {
    assert.match(e.message, new RegExp(`resume from .*${step(3)}: tensor 'base_model\\.model\\..*\\.lora_A\\.weight' has shape \\[4, \\d+\\] in the checkpoint but \\[8, \\d+\\] in this run`));
    return true;
  });
});
