// `vlm-grpo grpo` as a process, against user code that misbehaves and against
// signals: a reward whose promise never settles ends the run with exit code 1
// and a message naming the module and the limit (before: exit 0 after ~2 s
// with nothing written); SIGTERM while a reward spins ends the process within
// stop_timeout_s with 143 (before: only kill -9 stopped it); SIGINT during a
// run saves a checkpoint and exits 130 (before: 0), and the run then resumes
// to its final model with exit 0. Every child is killed after a bounded time
// so a regression fails the test instead of hanging it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { synthesizeDataset } from "../../src/data/synth/writer.js";
import { initModel } from "../../src/models/init_model.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
let root = "";
let base: string[] = [];

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-interrupt-"));
  const data = (await synthesizeDataset({ outDir: path.join(root, "data"), n: 24, imageSize: 32, seed: 1 })).manifest;
  const model = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "model"), seed: 2 })).dir;
  fs.writeFileSync(path.join(root, "stall.mjs"), "export default () => new Promise(() => {});\n");
  fs.writeFileSync(path.join(root, "spin.mjs"), "export default () => { for (;;) {} };\n");
  fs.writeFileSync(path.join(root, "length.mjs"), "export default (ctx) => ctx.completions.map((c) => c.length / 10);\n");
  base = ["--model", model, "--data.path", data, "--prompt.system_prompt", "", "--lora.rank", "4", "--grpo.prompts_per_step", "2", "--grpo.num_generations", "2", "--grpo.max_completion_length", "4", "--grpo.log_every", "1"];
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

interface Child {
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>;
  pid: number;
  /** Resolves when stderr or stdout has printed a line matching `re`. */
  waitFor(re: RegExp): Promise<void>;
}

/** Runs the CLI; SIGKILLs it after `killAfterMs` so no test can hang. */
function run(args: string[], killAfterMs: number): Child {
  const p = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, CI: "true" } });
  let out = "";
  let err = "";
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) if (w.re.test(out + err)) waiters.splice(waiters.indexOf(w), 1) && w.resolve();
  };
  p.stdout.on("data", (d) => ((out += d), check()));
  p.stderr.on("data", (d) => ((err += d), check()));
  const killer = setTimeout(() => p.kill("SIGKILL"), killAfterMs);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) =>
    p.on("close", (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, out, err });
    }),
  );
  return {
    done,
    pid: p.pid!,
    waitFor: (re) =>
      new Promise<void>((resolve, reject) => {
        waiters.push({ re, resolve });
        check();
        void done.then(() => reject(new Error(`the process ended before printing ${re}:\n${out}\n${err}`)));
      }),
  };
}

test("a reward promise that never settles ends the run with exit code 1, naming the module and the limit", { timeout: 240_000 }, async () => {
  const out = path.join(root, "stall");
  const r = await run(["grpo", ...base, "--output_dir", out, "--grpo.steps", "3", "--grpo.rewards", JSON.stringify([{ module: path.join(root, "stall.mjs") }]), "--grpo.reward_timeout_s", "1"], 180_000).done;
  assert.equal(r.signal, null, `killed by ${r.signal}: ${r.err}`);
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.err, /reward function 'stall' \(module .*stall\.mjs\) did not return within 1 s \(grpo\.reward_timeout_s\)/);
  assert.equal(fs.existsSync(path.join(out, "final")), false);
});

test("SIGTERM while a reward spins ends the process within stop_timeout_s with exit code 143", { timeout: 240_000 }, async () => {
  const out = path.join(root, "spin");
  const c = run(["grpo", ...base, "--output_dir", out, "--grpo.steps", "3", "--grpo.rewards", JSON.stringify([{ module: path.join(root, "spin.mjs") }]), "--grpo.reward_timeout_s", "600", "--stop_timeout_s", "2"], 180_000);
  await c.waitFor(/grpo: \d+ train prompts/);
  await new Promise((r) => setTimeout(r, 1500)); // into step 1: the reward is spinning
  const t0 = performance.now();
  process.kill(c.pid, "SIGTERM");
  const r = await c.done;
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(r.signal, null, `killed by ${r.signal}`);
  assert.equal(r.code, 143, r.out + r.err);
  assert.ok(seconds < 20, `took ${seconds.toFixed(1)} s after SIGTERM (stop_timeout_s 2)`);
  assert.match(r.err, /did not finish within 2 s of SIGTERM \(stop_timeout_s\); exiting now \(exit code 143\)/);
});

test("SIGINT saves a checkpoint and exits 130; --resume auto then finishes with exit code 0", { timeout: 480_000 }, async () => {
  const out = path.join(root, "int");
  const steps = 20;
  // The untrained model's answers are all unparseable: that is a stall (exit code 3) unless on_stall is warn.
  const args = ["grpo", ...base, "--output_dir", out, "--grpo.steps", String(steps), "--grpo.on_stall", "warn", "--grpo.rewards", JSON.stringify([{ module: path.join(root, "length.mjs") }])];
  const c = run(args, 240_000);
  // Wait for a logged step, then interrupt.
  for (let i = 0; i < 1200 && !(fs.existsSync(path.join(out, "metrics.jsonl")) && fs.statSync(path.join(out, "metrics.jsonl")).size > 0); i++) await new Promise((r) => setTimeout(r, 100));
  process.kill(c.pid, "SIGINT");
  const r = await c.done;
  assert.equal(r.signal, null, `killed by ${r.signal}`);
  assert.equal(r.code, 130, r.out + r.err);
  assert.match(r.out, /grpo stopped at step (\d+)/);
  const stoppedAt = Number(/grpo stopped at step (\d+)/.exec(r.out)![1]);
  assert.ok(stoppedAt >= 1 && stoppedAt < steps);
  const ckpt = path.join(out, "checkpoints", `step-${String(stoppedAt).padStart(8, "0")}`);
  assert.ok(fs.existsSync(path.join(ckpt, "trainer_state.json")), `no checkpoint at ${ckpt}`);
  assert.equal(fs.existsSync(path.join(out, "final")), false);
  // Finish the run from that checkpoint, with the same settings.
  const rest = await run([...args, "--resume", "auto"], 240_000).done;
  assert.equal(rest.code, 0, rest.out + rest.err);
  assert.match(rest.out, new RegExp(`grpo: resumed from .*step-${String(stoppedAt).padStart(8, "0")} at step ${stoppedAt}`));
  assert.ok(fs.existsSync(path.join(out, "final", "config.json")));
});
