// One point of the demo's GRPO sweep: GRPO from a given SFT model on a given
// data set with configs/demo.yaml plus overrides, then the evaluation's
// greedy answers and scores for the SFT and GRPO models on the test split.
// Prints one JSON line: recall, FPR, ROC AUC of each, the last 10 steps'
// batch recall / FPR / zero-variance share, and the wall time of GRPO.
//
//   node dist/bench/demo_grpo_sweep.js --sft-model DIR --data MANIFEST \
//     --grpo '{"steps":60,"lr":1e-4}' [--reward symmetric] [--seed 0] [--tag NAME] [--keep DIR] [--skip-sft]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadDemoConfig } from "../src/cli/commands/demo.js";
import { validate } from "../src/config/schema.js";
import { runConfigSchema } from "../src/config/run_config.js";
import { loadSplits } from "../src/data/splits_from_config.js";
import { evaluateModel } from "../src/eval/run_eval.js";
import { setBlasThreads } from "../src/torch/index.js";
import { runGrpo } from "../src/train/grpo.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const SYMMETRIC = { name: "recall", options: { truePositive: 1, falseNegative: -1, falsePositive: -1, trueNegative: 1 } };

async function main(): Promise<void> {
  if (process.env.VLM_BLAS_THREADS === undefined) setBlasThreads(1);
  const sftModel = arg("sft-model");
  const data = arg("data");
  if (!sftModel || !data) throw new Error("--sft-model DIR and --data MANIFEST are required");
  const seed = Number(arg("seed") ?? 0);
  const over = JSON.parse(arg("grpo") ?? "{}") as Record<string, unknown>;
  const work = arg("keep") ?? fs.mkdtempSync(path.join(os.tmpdir(), "vlm-grpo-sweep-"));
  const raw = structuredClone(loadDemoConfig()) as unknown as Record<string, unknown>;
  raw.seed = seed;
  raw.model = sftModel;
  raw.output_dir = path.join(work, "grpo");
  (raw.data as Record<string, unknown>).path = data;
  raw.grpo = { ...(raw.grpo as object), ...over, ...(arg("reward") === "symmetric" ? { rewards: [SYMMETRIC, { name: "format" }] } : {}) };
  (raw.eval as Record<string, unknown>).report = false;
  const cfg = validate(runConfigSchema, raw, { file: "demo_grpo_sweep" });
  const t0 = performance.now();
  const g = await runGrpo(cfg, { progress: false, log: () => {} });
  const grpoSeconds = (performance.now() - t0) / 1000;
  const splits = await loadSplits(cfg.data);
  const r3 = (x: number | null | undefined) => (x === null || x === undefined ? null : Math.round(x * 1000) / 1000);
  const tail = g.history.slice(-10);
  const mean = (f: (h: (typeof tail)[number]) => number | null) => r3(tail.reduce((s, h) => s + (f(h) ?? 0), 0) / Math.max(1, tail.length));
  const out: Record<string, unknown> = { tag: arg("tag") ?? "", seed, grpo: over, reward: arg("reward") ?? "recall", grpo_seconds: Math.round(grpoSeconds), load: os.loadavg()[0] };
  out.last10 = { recall: mean((h) => h.recall), fpr: mean((h) => h.fpr), zv: mean((h) => h.zeroVarianceFraction) };
  for (const [who, model] of [
    ["sft", sftModel],
    ["grpo", g.finalModelDir!],
  ] as const) {
    if (who === "sft" && process.argv.includes("--skip-sft")) continue;
    const ev = await evaluateModel(cfg, { name: who, model }, splits.test, { progress: false });
    out[`test_${who}`] = { recall: r3(ev.metrics.recall), fpr: r3(ev.metrics.fpr), auc: r3(ev.curves?.roc_auc), unparseable: r3(ev.metrics.unparseable_rate) };
  }
  if (!arg("keep")) fs.rmSync(work, { recursive: true, force: true });
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
