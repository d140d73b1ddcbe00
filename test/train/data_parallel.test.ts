// Data-parallel SFT, GRPO and eval with Gloo on loopback, 2 processes of the
// real CLI (the variables torchrun sets, or the built-in --nproc launcher),
// against one process with the same global batch:
//  - SFT and GRPO: the same per-step losses (and rewards) and final weights
//    within 1e-5 relative (float summation order: 2 partial gradient sums
//    instead of 1), with LoRA dropout 0 (dropout masks are per-rank streams)
//    and GRPO's "prompt" sampling streams (completions independent of the rank);
//    the weights' checksum is compared across ranks after every step
//    (distributed.check_weights_every 1);
//  - resume across a SIGKILL of rank 1: rank 0 stops with a message naming
//    rank 1, and the resumed 2-rank run ends with the uninterrupted run's
//    weights; resuming with another world size is refused by name;
//  - a rank whose reward throws ends the run: the other rank exits non-zero
//    naming it, well within the timeout; the launcher exits with its code;
//    a rank that hangs is named once distributed.timeout_s has passed;
//  - eval split over 2 ranks writes the same metrics and predictions as one process.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { synthesizeDataset } from "../../src/data/synth/writer.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { initModel } from "../../src/models/init_model.js";
import { dispose, isDistributedAvailable } from "../../src/torch/index.js";
import { freeLoopbackPort } from "../../src/cli/launch.js";

const skip = isDistributedAvailable("gloo") ? false : "the addon was built without c10d/Gloo";
const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const FIXTURES = fileURLToPath(new URL("../../../test/fixtures", import.meta.url));
const REL = 1e-5;

let root = "";
let dataPath = "";
let modelDir = "";

before(async () => {
  if (skip) return;
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-dp-"));
  dataPath = (await synthesizeDataset({ outDir: path.join(root, "data"), n: 48, imageSize: 32, seed: 1 })).manifest;
  modelDir = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "model"), seed: 2 })).dir;
});
after(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

const freePort = freeLoopbackPort;

/** A run config (JSON is YAML) with the shared settings, patched per test. */
function writeConfig(name: string, patch: Record<string, Record<string, unknown> | unknown>): string {
  const cfg: Record<string, unknown> = {
    model: modelDir,
    output_dir: path.join(root, name),
    seed: 3,
    threads: 1,
    data: { path: dataPath },
    prompt: { system_prompt: "", user_prompt: "Categories: {categories}?" },
    lora: { enabled: true, rank: 4, alpha: 8, dropout: 0 },
    sft: { max_steps: 3, micro_batch_size: 2, grad_accum: 2, lr: 1e-3, log_every: 1, eval_examples: 6 },
    grpo: { steps: 4, num_iterations: 2, beta: 0.05, prompts_per_step: 4, num_generations: 4, max_completion_length: 6, lr: 1e-3, log_every: 1, sampling_streams: "prompt", rewards: [{ module: path.join(FIXTURES, "rewards", "length_reward.mjs") }] },
    eval: { batch_size: 3, max_new_tokens: 6, report: false, split: "test" },
    distributed: { timeout_s: 30, bucket_mb: 0.004, check_weights_every: 1 },
  };
  for (const [k, v] of Object.entries(patch)) cfg[k] = typeof v === "object" && v && !Array.isArray(v) ? { ...(cfg[k] as object), ...v } : v;
  const file = path.join(root, `${name}.yaml`);
  fs.writeFileSync(file, JSON.stringify(cfg, null, 1));
  return file;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  seconds: number;
}

function runCli(args: string[], env: Record<string, string> = {}, onStart?: (c: ChildProcess) => void): Promise<Exit> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, VLM_NUM_THREADS: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, seconds: (performance.now() - t0) / 1000 });
    });
    onStart?.(child);
  });
}

/** The ranks of one run, started by hand with torchrun's variables (no launcher to clean up after them). */
async function runRanks(args: string[], n = 2, onStart?: (rank: number, c: ChildProcess) => void): Promise<Exit[]> {
  const port = await freePort();
  return Promise.all(
    Array.from({ length: n }, (_, rank) =>
      runCli(args, { RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(n), LOCAL_WORLD_SIZE: String(n), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port) }, (c) => onStart?.(rank, c)),
    ),
  );
}

function metricsOf(runDir: string): Map<number, Record<string, number>> {
  const byStep = new Map<number, Record<string, number>>();
  for (const line of fs.readFileSync(path.join(runDir, "metrics.jsonl"), "utf8").trim().split("\n")) {
    const rec = JSON.parse(line) as { step: number; metrics?: Record<string, number> } & Record<string, number>;
    byStep.set(rec.step, { ...byStep.get(rec.step), ...(rec.metrics ?? rec) });
  }
  return byStep;
}

function series(runDir: string, key: string): number[] {
  return [...metricsOf(runDir).entries()].sort((a, b) => a[0] - b[0]).filter(([, m]) => key in m).map(([, m]) => m[key]);
}

function assertClose(a: number[], b: number[], what: string, rel = REL, abs = 1e-7): void {
  assert.equal(a.length, b.length, `${what}: ${a.length} vs ${b.length} values`);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= abs + rel * Math.abs(b[i]), `${what}[${i}]: ${v} vs ${b[i]} (rel ${REL})`));
}

/**
 * Compares two PEFT adapters element by element, relative to each tensor's
 * largest value. `rel` bounds all but a `tailFraction` of the elements;
 * those may reach `tailRel`. Why a tail: AdamW divides each update by
 * sqrt(v); where a coordinate's per-sample gradients nearly cancel, the
 * summation-order noise of the two partial sums (~1e-7 of the terms) is a
 * large relative error of that coordinate's tiny gradient, and Adam's
 * normalization turns it into a visible difference of its update. Measured
 * on the GRPO case: 1 element of 8192 above 1e-5 (at 1.0e-4), 99.9% below 2.9e-6.
 */
function assertSameAdapter(dirA: string, dirB: string, rel = REL, tail: { fraction: number; rel: number } = { fraction: 0, rel }): void {
  const a = loadSafetensors(path.join(dirA, "adapter_model.safetensors"));
  const b = loadSafetensors(path.join(dirB, "adapter_model.safetensors"));
  try {
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    let moved = 0;
    let n = 0;
    const outside: string[] = [];
    for (const [k, t] of a) {
      const x = t.toFlatArray();
      const y = b.get(k)!.toFlatArray();
      const scale = Math.max(...y.map(Math.abs), 1e-3);
      x.forEach((v, i) => {
        n++;
        const r = Math.abs(v - y[i]) / scale;
        assert.ok(r <= tail.rel, `${k}[${i}]: ${v} vs ${y[i]} (${r.toExponential(2)} of the tensor's scale, limit ${tail.rel})`);
        if (r > rel) outside.push(`${k}[${i}]: ${v} vs ${y[i]}`);
      });
      if (k.includes("lora_B") && y.some((v) => v !== 0)) moved++;
    }
    assert.ok(outside.length <= tail.fraction * n, `${outside.length} of ${n} elements differ by more than ${rel} of their tensor's scale: ${outside.slice(0, 5).join("; ")}`);
    assert.ok(moved > 0, "training moved the adapters (lora_B starts at zero)");
  } finally {
    dispose([...a.values(), ...b.values()]);
  }
}

const ok = (e: Exit, what: string) => assert.equal(e.code, 0, `${what} exited with ${e.code ?? e.signal}:\n${e.out.slice(-3000)}`);

describe("data-parallel training (gloo, 2 processes)", { skip }, () => {
  test("SFT on 2 ranks gives the losses and weights of 1 process with the same global batch", async () => {
    const two = writeConfig("sft2", {});
    const one = writeConfig("sft1", { sft: { grad_accum: 4 } }); // 2 micro-batches of 2 on each of 2 ranks = 4 in one process
    const [r0, r1] = await runRanks(["sft", "--config", two]);
    ok(r0, "rank 0");
    ok(r1, "rank 1");
    ok(await runCli(["sft", "--config", one]), "one process");
    assert.match(r0.out, /data parallel over 2 processes \(gloo/);
    assert.doesNotMatch(r1.out, /sft: \d+ train/, "rank 1 does not print the run's log lines");
    assert.equal(fs.existsSync(path.join(root, "sft2", "metrics.jsonl")), true);
    const losses2 = series(path.join(root, "sft2"), "train/loss");
    assertClose(losses2, series(path.join(root, "sft1"), "train/loss"), "train/loss");
    assert.equal(losses2.length, 3);
    assertClose(series(path.join(root, "sft2"), "val/loss"), series(path.join(root, "sft1"), "val/loss"), "val/loss");
    assertClose(series(path.join(root, "sft2"), "train/grad_norm"), series(path.join(root, "sft1"), "train/grad_norm"), "grad_norm");
    assert.ok(series(path.join(root, "sft2"), "perf/allreduce_buckets").every((b) => b > 1), "the 4 KiB cap splits the adapters' gradients into several buckets");
    assertSameAdapter(path.join(root, "sft2", "final-adapter"), path.join(root, "sft1", "final-adapter"));
    const ckpt = fs.readFileSync(path.join(root, "sft2", "checkpoints", "latest"), "utf8").trim();
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(root, "sft2", "checkpoints", ckpt, "distributed.json"), "utf8")), { world_size: 2 });
  });

  test("GRPO on 2 ranks gives the losses, rewards and weights of 1 process (prompt streams, beta > 0, 2 iterations)", async () => {
    const two = writeConfig("grpo2", {});
    const one = writeConfig("grpo1", {});
    const [r0, r1] = await runRanks(["grpo", "--config", two]);
    ok(r0, "rank 0");
    ok(r1, "rank 1");
    ok(await runCli(["grpo", "--config", one]), "one process");
    const d2 = path.join(root, "grpo2");
    const d1 = path.join(root, "grpo1");
    for (const key of ["reward/total_mean", "reward/total_std", "advantage/std", "completion/length_mean", "batch/tp", "train/zero_variance_fraction"]) {
      assertClose(series(d2, key), series(d1, key), key, 1e-12, 1e-12);
    }
    for (const key of ["train/loss", "train/kl", "train/grad_norm", "train/clip_ratio_low"]) assertClose(series(d2, key), series(d1, key), key);
    assert.equal(series(d2, "train/loss").length, 4);
    assertSameAdapter(path.join(d2, "final-adapter"), path.join(d1, "final-adapter"), REL, { fraction: 1e-3, rel: 1e-3 });
  });

  test("GRPO with per-rank sampling streams resumes on 2 ranks to the uninterrupted run (every rank's RNG restored)", async () => {
    const patch = { grpo: { steps: 3, num_iterations: 1, sampling_streams: "rank", save_every: 1 }, lora: { dropout: 0.1 } };
    const whole = writeConfig("grpo-rank", patch);
    const parts = writeConfig("grpo-rank-b", patch);
    for (const [r, what] of (await runRanks(["grpo", "--config", whole])).map((r, i) => [r, `uninterrupted rank ${i}`] as const)) ok(r, what);
    for (const [r, what] of (await runRanks(["grpo", "--config", parts, "--grpo.steps", "2"])).map((r, i) => [r, `first part, rank ${i}`] as const)) ok(r, what);
    const ckpt = path.join(root, "grpo-rank-b", "checkpoints", "step-00000002");
    const rng = loadSafetensors(path.join(ckpt, "rng_ranks.safetensors"));
    assert.deepEqual([...rng.keys()].sort(), ["global.rank1", "sampler.rank1"]);
    dispose([...rng.values()]);
    const resumed = await runRanks(["grpo", "--config", parts, "--resume", "auto"]);
    resumed.forEach((r, i) => ok(r, `resumed rank ${i}`));
    assert.match(resumed[0].out, /grpo: resumed from .*step-00000002 at step 2/);
    const a = path.join(root, "grpo-rank");
    const b = path.join(root, "grpo-rank-b");
    // Sampling (rank 1's stream) and dropout (each rank's global stream) continue exactly: the same completions.
    assertClose(series(b, "reward/total_mean"), series(a, "reward/total_mean"), "reward", 0, 0);
    assertClose(series(b, "train/loss"), series(a, "train/loss"), "loss", 1e-6);
    assertSameAdapter(path.join(b, "final-adapter"), path.join(a, "final-adapter"), 1e-6);
  });

  test("a killed rank stops the other, naming it; the run resumes on 2 ranks to the uninterrupted weights; another world size is refused", async () => {
    const cfg = writeConfig("sft-kill", { sft: { save_every: 1, max_steps: 3 } });
    const runDir = path.join(root, "sft-kill");
    const latest = path.join(runDir, "checkpoints", "latest");
    let killedAt = 0;
    const [r0, r1] = await runRanks(["sft", "--config", cfg], 2, (rank, child) => {
      if (rank !== 1) return;
      const poll = setInterval(() => {
        if (fs.existsSync(latest) && fs.readFileSync(latest, "utf8").trim() === "step-00000001") {
          clearInterval(poll);
          killedAt = performance.now();
          child.kill("SIGKILL");
        }
      }, 20);
      child.on("close", () => clearInterval(poll));
    });
    assert.equal(r1.signal, "SIGKILL", `rank 1 was killed (exit ${r1.code}):\n${r1.out.slice(-2000)}`);
    assert.equal(r0.code, 1, `rank 0 exits non-zero:\n${r0.out.slice(-2000)}`);
    assert.match(r0.out, /rank 0 of 2: .* failed: rank 1 did not answer within \d+ ms \(killed, crashed or hung/);
    assert.ok(performance.now() - killedAt < 20_000, "rank 0 stopped well within distributed.timeout_s (30 s)");
    assert.equal(fs.existsSync(path.join(runDir, "final-adapter")), false);

    const once = await runCli(["sft", "--config", cfg, "--resume", "auto"]);
    assert.equal(once.code, 1);
    assert.match(once.out, /was saved by 2 processes, this run has 1 process: the world size changed/);

    const [s0, s1] = await runRanks(["sft", "--config", cfg, "--resume", "auto"]);
    ok(s0, "resumed rank 0");
    ok(s1, "resumed rank 1");
    assert.match(s0.out, /sft: resumed from .*step-0000000\d at step [12]/);
    assertSameAdapter(path.join(runDir, "final-adapter"), path.join(root, "sft2", "final-adapter"), 1e-6);
  });

  test("a rank whose reward throws ends the run: the other names it and exits non-zero; --nproc exits with its code", async () => {
    const cfg = writeConfig("grpo-fail", { grpo: { steps: 3, num_iterations: 1, beta: 0, rewards: [{ module: path.join(FIXTURES, "rewards", "fails_on_rank1.mjs") }] } });
    const [r0, r1] = await runRanks(["grpo", "--config", cfg]);
    assert.equal(r1.code, 1);
    assert.match(r1.out, /\[rank 1\]: .*injected failure in the reward of rank 1/);
    assert.equal(r0.code, 1);
    assert.match(r0.out, /\[rank 0\]: rank 0 of 2: stopping because rank 1 failed: .*injected failure in the reward of rank 1/);
    assert.ok(r0.seconds < 60, `rank 0 took ${r0.seconds} s`);

    const launched = await runCli(["grpo", "--nproc", "2", "--config", cfg, "--output_dir", path.join(root, "grpo-fail-launch")], {});
    assert.equal(launched.code, 1, launched.out.slice(-2000));
    assert.match(launched.out, /\[rank1\]: vlm-grpo grpo \[rank 1\]: .*injected failure/);
    assert.match(launched.out, /vlm-grpo: rank 1 exited with code 1; stopping the other ranks/);
  });

  test("a hung rank: the other gives up after distributed.timeout_s and names it", async () => {
    const cfg = writeConfig("grpo-hang", { grpo: { steps: 3, num_iterations: 1, beta: 0, rewards: [{ module: path.join(FIXTURES, "rewards", "hangs_on_rank1.mjs") }] }, distributed: { timeout_s: 4 } });
    const [r0] = await runRanks(["grpo", "--config", cfg]);
    assert.equal(r0.code, 1, r0.out.slice(-2000));
    assert.match(r0.out, /\[rank 0\]: rank 0 of 2: .* failed: rank 1 did not answer within 4000 ms \(killed, crashed or hung/);
  });

  test("eval split over 2 ranks (--nproc) writes the metrics and predictions of one process", async () => {
    const cfg = writeConfig("eval", {});
    const args = (out: string) => ["eval", "--config", cfg, "--out", path.join(root, out)];
    const two = await runCli(["eval", "--nproc", "2", ...args("eval2").slice(1)]);
    ok(two, "eval --nproc 2");
    ok(await runCli(args("eval1")), "eval in one process");
    assert.match(two.out, /\[rank0\]: .*recall/i, "rank 0 prints the table, prefixed");
    const strip = (f: string) => {
      const m = JSON.parse(fs.readFileSync(f, "utf8")) as Record<string, Record<string, unknown>>;
      for (const v of Object.values(m)) {
        delete v.seconds;
        // When the thresholds were chosen differs; what was chosen must not.
        if (v.thresholds) delete (v.thresholds as Record<string, unknown>).chosen_at;
      }
      return m;
    };
    assert.deepEqual(strip(path.join(root, "eval2", "metrics.json")), strip(path.join(root, "eval1", "metrics.json")));
    const preds = (d: string) => fs.readFileSync(path.join(root, d, "predictions.jsonl"), "utf8");
    assert.equal(preds("eval2"), preds("eval1"));
    assert.ok(preds("eval1").trim().split("\n").length >= 4, "the test split has several batches of 3");
  });

  test("predict split over 2 ranks (--nproc) writes the rows of one process, in input order", async () => {
    const images = path.join(path.dirname(dataPath), "images");
    const args = (out: string) => ["predict", "--model", modelDir, "--batch-size", "3", "--max-new-tokens", "4", "--use-answer", "--out", path.join(root, out), images];
    ok(await runCli([...args("pred2.jsonl"), "--nproc", "2"]), "predict --nproc 2");
    ok(await runCli(args("pred1.jsonl")), "predict in one process");
    const rows = (f: string) => fs.readFileSync(path.join(root, f), "utf8");
    assert.ok(rows("pred1.jsonl").trim().split("\n").length >= 40, "every image of the set has a row");
    assert.equal(rows("pred2.jsonl"), rows("pred1.jsonl"));
  });
});
