// `npm run bench:dp`: data-parallel training on this machine, 1 process vs N
// (Gloo on loopback), with the gradient all-reduce timed on its own.
//
// Part 1, the collective alone: N workers all-reduce float32 buffers of
// several sizes (the bucket sizes a run could use) and report the time per
// all-reduce (median of --reps) and the algorithm bandwidth (bytes / time).
// Part 2, end to end: `vlm-grpo sft` on the synthetic set with the "small"
// preset, full fine-tuning (every gradient crosses the wire), the same global
// batch in both runs (micro-batch M, grad_accum A*N in one process and A on
// each of N); one process runs with all cores and with a worker's share of
// them, each of the N workers with cores / N threads. From each
// run's metrics.jsonl: median step seconds (the first step is dropped: it
// builds caches), examples/s, and for N processes the all-reduce per step:
// seconds (launch to last wait), seconds the JS thread waited (not hidden
// behind flattening), MiB, buckets, and seconds per bucket.
//
// Flags: --nproc N (2)  --steps S (6)  --micro M (4)  --accum A (1)
//   --bucket-mb B (25, as DDP)  --reps R (10)  --json
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { synthesizeDataset } from "../src/data/synth/writer.js";
import { initModel } from "../src/models/init_model.js";
import { DataParallel, dispose, setNumThreads, zeros } from "../src/torch/index.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const SELF = fileURLToPath(import.meta.url);

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name}: expected a positive number, got '${process.argv[i + 1]}'`);
  return v;
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

const SIZES_MB = [0.0625, 0.25, 1, 4, 16, 25];

/** Worker of part 1 (started by the launcher with torchrun's variables). */
async function allReduceWorker(): Promise<void> {
  const reps = arg("reps", 10);
  setNumThreads(1);
  const dp = await DataParallel.init({ timeoutMs: 60_000 });
  const rows: { mb: number; ms: number; asyncMs: number }[] = [];
  for (const mb of SIZES_MB) {
    const t = zeros([Math.round((mb * 1024 * 1024) / 4)]);
    const times: number[] = [];
    const asyncTimes: number[] = [];
    for (let r = 0; r < reps + 1; r++) {
      dp.barrier();
      let t0 = performance.now();
      dp.pg!.allReduce(t, "sum");
      if (r > 0) times.push(performance.now() - t0);
      dp.barrier();
      t0 = performance.now();
      dp.pg!.allReduceAsync(t, "sum").wait();
      if (r > 0) asyncTimes.push(performance.now() - t0);
    }
    dispose([t]);
    rows.push({ mb, ms: median(times), asyncMs: median(asyncTimes) });
  }
  dp.barrier();
  dp.destroy();
  if (dp.isMain) process.stdout.write(`RESULT ${JSON.stringify(rows)}\n`);
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
}

interface SftFigures {
  processes: number;
  stepSeconds: number;
  examplesPerSecond: number;
  allreduceSeconds?: number;
  allreduceWaitSeconds?: number;
  allreduceMiB?: number;
  buckets?: number;
  secondsPerBucket?: number;
}

function figures(runDir: string, processes: number, globalBatch: number): SftFigures {
  const recs = fs.readFileSync(path.join(runDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { metrics: Record<string, number> }).metrics).filter((m) => "perf/step_seconds" in m).slice(1);
  const col = (k: string) => median(recs.map((m) => m[k]));
  const step = col("perf/step_seconds");
  const f: SftFigures = { processes, stepSeconds: step, examplesPerSecond: globalBatch / step };
  if (processes > 1) {
    f.allreduceSeconds = col("perf/allreduce_seconds");
    f.allreduceWaitSeconds = col("perf/allreduce_wait_seconds");
    f.allreduceMiB = col("perf/allreduce_mb");
    f.buckets = col("perf/allreduce_buckets");
    f.secondsPerBucket = f.allreduceSeconds / f.buckets;
  }
  return f;
}

async function main(): Promise<void> {
  if (process.argv.includes("--allreduce-worker")) return allReduceWorker();
  const nproc = arg("nproc", 2);
  const steps = arg("steps", 6);
  const micro = arg("micro", 4);
  const accum = arg("accum", 1);
  const bucketMb = arg("bucket-mb", 25);
  const json = process.argv.includes("--json");
  const cores = os.availableParallelism();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-bench-dp-"));
  try {
    // ---- part 1: the all-reduce alone ----
    const collective = await allReduceViaLauncher(nproc, arg("reps", 10));

    // ---- part 2: SFT end to end ----
    const data = (await synthesizeDataset({ outDir: path.join(root, "data"), n: 200, imageSize: 64, seed: 1 })).manifest;
    const model = (await initModel({ arch: "idefics3", preset: "small", outDir: path.join(root, "model"), seed: 2 })).dir;
    const cfg = (name: string, accumSteps: number, threads: number) => {
      const file = path.join(root, `${name}.yaml`);
      fs.writeFileSync(
        file,
        JSON.stringify({
          model,
          output_dir: path.join(root, name),
          seed: 0,
          threads,
          data: { path: data },
          lora: { enabled: false },
          sft: { max_steps: steps, micro_batch_size: micro, grad_accum: accumSteps, lr: 1e-4, log_every: 1, eval_examples: 4, freeze_vision: true },
          distributed: { bucket_mb: bucketMb },
        }),
      );
      return file;
    };
    const globalBatch = micro * accum * nproc;
    const perWorker = Math.max(1, Math.floor(cores / nproc));
    const sft: (SftFigures & { threads: number })[] = [];
    for (const [name, procs, threads] of [["one-all", 1, cores], ["one-share", 1, perWorker], ["many", nproc, perWorker]] as const) {
      if (name === "one-share" && perWorker === cores) continue;
      const r = await run([CLI, "sft", ...(procs > 1 ? ["--nproc", String(procs)] : []), "--config", cfg(name, procs > 1 ? accum : accum * nproc, threads)]);
      if (r.code !== 0) throw new Error(`sft (${name}) failed:\n${r.out.slice(-2000)}`);
      sft.push({ ...figures(path.join(root, name), procs, globalBatch), threads });
    }

    const result = { machine: { cores, node: process.version }, nproc, globalBatch, micro, bucketMb, collective, sft };
    if (json) {
      console.log(JSON.stringify(result, null, 2));
      return;
    }
    console.log(`all-reduce of float32 buffers, ${nproc} processes on loopback (Gloo), median of ${arg("reps", 10)}:`);
    console.log("  MiB      blocking ms   async+wait ms   GB/s");
    for (const r of collective) console.log(`  ${r.mb.toFixed(4).padStart(7)}  ${r.ms.toFixed(2).padStart(11)}  ${r.asyncMs.toFixed(2).padStart(14)}  ${((r.mb * 1024 * 1024) / (r.ms / 1000) / 1e9).toFixed(2).padStart(5)}`);
    console.log(`\nsft, preset small, full fine-tuning, global batch ${globalBatch} (micro ${micro}), median step over steps 2..${steps}:`);
    for (const f of sft) {
      const comm = f.processes > 1 ? `; all-reduce ${f.allreduceSeconds!.toFixed(3)} s (waited ${f.allreduceWaitSeconds!.toFixed(3)} s), ${f.allreduceMiB!.toFixed(1)} MiB in ${f.buckets} bucket(s), ${(f.secondsPerBucket! * 1000).toFixed(1)} ms per bucket` : "";
      console.log(`  ${f.processes} process(es) x ${f.threads} thread(s): ${f.stepSeconds.toFixed(3)} s/step, ${f.examplesPerSecond.toFixed(2)} examples/s${comm}`);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Part 1 through the --nproc launcher's environment (torchrun's variables). */
async function allReduceViaLauncher(nproc: number, reps: number): Promise<{ mb: number; ms: number; asyncMs: number }[]> {
  const { freeLoopbackPort, workerEnv } = await import("../src/cli/launch.js");
  const port = await freeLoopbackPort();
  const outs = await Promise.all(Array.from({ length: nproc }, (_, r) => run([SELF, "--allreduce-worker", "--reps", String(reps)], workerEnv(r, nproc, port, {}))));
  const line = outs[0].out.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`all-reduce workers failed:\n${outs.map((o) => o.out.slice(-1500)).join("\n---\n")}`);
  return JSON.parse(line.slice("RESULT ".length)) as { mb: number; ms: number; asyncMs: number }[];
}

main().catch((e: unknown) => {
  console.error(`bench:dp: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
