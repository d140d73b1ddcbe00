// `npm run bench:soak`: a long GRPO run of the real trainer (runGrpo) on the
// tiny model, recording resident memory (RSS) at every step, to check that a
// training loop's memory stays flat over thousands of steps (DESIGN.md,
// "Memory"; issue 13).
//
// Setup: a random tiny Idefics3 model, the synthetic demo set (48 images of
// 32 px), LoRA rank 4, 2 prompts x 4 completions per step, completions of up
// to 8 tokens. Rewards (--reward): "module" (default), a user reward module
// (completion length / 10, so every group has reward variance and a
// gradient) that runs in its worker thread like any user's; or "builtin",
// the in-process recall and format rewards only (on a random model nearly
// every group has zero variance; the step's work is the same but nothing in
// it waits on another thread). RSS comes from the trainer's own
// `perf/rss_mib` metric in metrics.jsonl (logged every step).
//
// Verdict: growth = (median RSS of the last 10% of steps) / (median RSS of
// the 10 steps after warm-up) - 1; the goal is under 10%.
//
// Flags: --steps N (2000)  --warmup N (200)  --completion-length N (8)  --reward module|builtin
//   --dir DIR (keep the run there; default a temp folder, removed)  --json
//   --every N (rows of the printed table; default steps / 10)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { validate } from "../src/config/schema.js";
import { runConfigSchema } from "../src/config/run_config.js";
import { synthesizeDataset } from "../src/data/synth/writer.js";
import { initModel } from "../src/models/init_model.js";
import { runGrpo } from "../src/train/grpo.js";

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
function argInt(name: string, dflt: number): number {
  const v = argValue(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench:soak: --${name} must be a positive integer, got '${v}'`);
  return n;
}

const steps = argInt("steps", 2000);
const warmup = argInt("warmup", 200);
const completionLength = argInt("completion-length", 8);
const every = argInt("every", Math.max(1, Math.floor(steps / 10)));
const asJson = process.argv.includes("--json");
const rewardKind = argValue("reward") ?? "module";
if (rewardKind !== "module" && rewardKind !== "builtin") throw new Error(`bench:soak: --reward must be module or builtin, got '${rewardKind}'`);
if (warmup + 10 >= steps) throw new Error(`bench:soak: --warmup (${warmup}) must leave at least 10 steps before --steps (${steps})`);

const keepDir = argValue("dir");
const root = keepDir ? path.resolve(keepDir) : fs.mkdtempSync(path.join(os.tmpdir(), "vlm-soak-"));
fs.mkdirSync(root, { recursive: true });

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const t0 = performance.now();
  const ds = await synthesizeDataset({ outDir: path.join(root, "data"), n: 48, imageSize: 32, seed: 1, overwrite: true });
  const modelDir = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "model"), seed: 2 })).dir;
  const rewardFile = path.join(root, "length_reward.mjs");
  fs.writeFileSync(rewardFile, "export default (ctx) => ctx.completions.map((c) => c.length / 10);\n");
  const runDir = path.join(root, "run");
  fs.rmSync(runDir, { recursive: true, force: true });
  const cfg = validate(
    runConfigSchema,
    {
      model: modelDir,
      output_dir: runDir,
      seed: 3,
      data: { path: ds.manifest },
      prompt: { system_prompt: "", user_prompt: "Categories: {categories}?" },
      lora: { enabled: true, rank: 4, alpha: 8, dropout: 0.1 },
      // An untrained model learns nothing here (every answer unparseable): the soak measures memory, so the stall check only warns.
      grpo: { steps, prompts_per_step: 2, num_generations: 4, max_completion_length: completionLength, lr: 1e-3, log_every: 1, save_every: 0, on_stall: "warn", rewards: rewardKind === "module" ? [{ module: rewardFile }] : [{ name: "recall" }, { name: "format" }] },
    },
    { file: "bench:soak config" },
  );
  const startRss = process.memoryUsage.rss() / 2 ** 20;
  await runGrpo(cfg, { log: asJson ? () => {} : (l) => console.error(l), progress: !asJson });
  const seconds = (performance.now() - t0) / 1000;
  const rows = fs
    .readFileSync(path.join(runDir, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; metrics: Record<string, number> })
    .filter((r) => r.metrics["perf/rss_mib"] !== undefined);
  const rss = new Map(rows.map((r) => [r.step, r.metrics["perf/rss_mib"]]));
  const at = (s: number) => rss.get(s) ?? NaN;
  const afterWarmup = median(Array.from({ length: 10 }, (_, k) => at(warmup + 1 + k)));
  const tail = Array.from({ length: Math.max(1, Math.floor(steps / 10)) }, (_, k) => at(steps - k));
  const end = median(tail);
  const growth = end / afterWarmup - 1;
  const metricAt = (s: number, k: string) => rows.find((r) => r.step === s)?.metrics[k] ?? NaN;
  const table = [1, ...Array.from({ length: Math.floor(steps / every) }, (_, k) => (k + 1) * every)]
    .filter((s) => rss.has(s))
    .map((s) => ({ step: s, rssMiB: Math.round(at(s)), jsHeapMiB: Math.round(metricAt(s, "perf/js_heap_mib")), liveTensors: metricAt(s, "perf/live_tensors") }));
  const result = {
    steps,
    reward: rewardKind,
    warmup,
    completionLength,
    seconds: Math.round(seconds),
    node: process.version,
    startRssMiB: Math.round(startRss),
    peakRssMiB: Math.round(Math.max(...rss.values())),
    rssAfterWarmupMiB: Math.round(afterWarmup),
    rssEndMiB: Math.round(end),
    growthAfterWarmup: Number(growth.toFixed(4)),
    goalMet: growth < 0.1,
    table,
  };
  if (asJson) console.log(JSON.stringify(result));
  else {
    console.log(`\nbench:soak: ${steps} GRPO steps on the tiny model (2 prompts x 4 completions, up to ${completionLength} tokens, ${rewardKind} rewards) in ${result.seconds} s`);
    console.log("| step | RSS (MiB) | JS heap (MiB) | live tensors |\n|-----:|----------:|--------------:|-------------:|");
    for (const r of table) console.log(`| ${r.step} | ${r.rssMiB} | ${r.jsHeapMiB} | ${r.liveTensors} |`);
    console.log(
      `RSS after warm-up (median of steps ${warmup + 1}-${warmup + 10}): ${result.rssAfterWarmupMiB} MiB; at the end (median of the last ${tail.length} steps): ${result.rssEndMiB} MiB; ` +
        `growth ${(growth * 100).toFixed(1)}% (goal < 10%: ${result.goalMet ? "met" : "NOT met"}); peak ${result.peakRssMiB} MiB`,
    );
  }
  if (!keepDir) fs.rmSync(root, { recursive: true, force: true });
}

await main();
