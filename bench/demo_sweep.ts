// One point of the demo's model/data/SFT sweep ("What makes the demo model
// see" in BENCHMARKS.md): synthesize (or reuse) the stand-in set, initialize
// an Idefics3 model from a preset with optional shape overrides, run the
// demo's SFT (configs/demo.yaml) with optional overrides, and score the val
// and test splits (and a large probe set drawn with another seed) with the
// evaluation's P(offensive) probe. Prints one JSON line: ROC AUC (all,
// normal, hard subsets), recall at FPR <= 0.15, wall time of each phase.
// No GRPO, no generation.
//
//   node dist/bench/demo_sweep.js --seed 0 --n 4000 --image-size 96 \
//     --model '{"vision":{"image_size":96,"patch_size":6},"scaleFactor":4}' \
//     --sft '{"epochs":8,"lr":0.002}' [--data '{"test_fraction":0.04}'] [--probe-n 3000] [--tag NAME] [--keep DIR] [--data-dir DIR]
//     [--score-model DIR]   (score DIR instead of training; the data and probe options still apply)
//     [--vision-init siglip|initializer_range]   (default: configs/demo.yaml's demo.vision_init)
// Data sets are cached under --data-dir (default /tmp/vlm-sweep) per (n, size, seed, hard fraction).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadDemoConfig } from "../src/cli/commands/demo.js";
import { validate } from "../src/config/schema.js";
import { policyOptions } from "../src/config/policy_options.js";
import { type RunConfig, runConfigSchema } from "../src/config/run_config.js";
import { loadSplits } from "../src/data/splits_from_config.js";
import { synthesizeDataset } from "../src/data/synth/writer.js";
import type { Example } from "../src/data/types.js";
import { computeCurves, recallAtFpr } from "../src/eval/curves.js";
import { collatePrompts, disposeEncoded, disposePromptBatch, loadPolicy, type Policy, probeAnswers } from "../src/policy/index.js";
import { runSft } from "../src/train/sft.js";
import { setBlasThreads } from "../src/torch/index.js";
import { initOverridden, type ShapeOverrides } from "./demo_init.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
function json<T>(name: string, dflt: T): T {
  const v = arg(name);
  return v === undefined ? dflt : (JSON.parse(v) as T);
}
function num(name: string, dflt: number): number {
  const v = arg(name);
  if (v === undefined) return dflt;
  const x = Number(v);
  if (!Number.isFinite(x)) throw new Error(`--${name}: expected a number, got '${v}'`);
  return x;
}

/** P(offensive) per example (no generation). */
export async function probeScores(policy: Policy, examples: readonly Example[], batchSize = 32): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < examples.length; i += batchSize) {
    const chunk = examples.slice(i, i + batchSize);
    const encoded = await Promise.all(chunk.map((x) => policy.encoder.encodePrompt(x)));
    const batch = collatePrompts(encoded, policy.padTokenId);
    try {
      out.push(...probeAnswers(policy, batch).map((p) => p.offensive));
    } finally {
      disposePromptBatch(batch);
      disposeEncoded(encoded);
    }
  }
  return out;
}

/** AUC, AUC on the normal and hard subsets, recall at FPR <= 0.15. */
export function summarize(examples: readonly Example[], scores: number[]): Record<string, number | null> {
  const truth = examples.map((e) => e.labels.length > 0);
  const isHard = (e: Example) => e.hard === true;
  const sub = (keep: (e: Example) => boolean) => {
    const idx = examples.map((e, i) => (keep(e) ? i : -1)).filter((i) => i >= 0);
    return computeCurves(idx.map((i) => scores[i]), idx.map((i) => truth[i])).roc_auc;
  };
  const all = computeCurves(scores, truth);
  const r = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);
  return { auc: r(all.roc_auc), auc_normal: r(sub((e) => !isHard(e))), auc_hard: r(sub(isHard)), recall_at_fpr15: r(recallAtFpr(all, 0.15).recall), n_hard: examples.filter(isHard).length };
}

async function synthCached(root: string, n: number, seed: number, imageSize: number, hardFraction: number, offensiveRate: number, val = 0.1, test = 0.1): Promise<string> {
  const dir = path.join(root, `data-n${n}-px${imageSize}-seed${seed}-hard${hardFraction}${val !== 0.1 || test !== 0.1 ? `-v${val}-t${test}` : ""}`);
  const fractions = { train: 1 - val - test, val, test };
  if (!fs.existsSync(path.join(dir, "manifest.jsonl"))) await synthesizeDataset({ outDir: dir, n, seed, imageSize, offensiveRate, hardFraction, fractions, overwrite: true });
  return path.join(dir, "manifest.jsonl");
}

async function main(): Promise<void> {
  if (process.env.VLM_BLAS_THREADS === undefined) setBlasThreads(1);
  const base = loadDemoConfig();
  const seed = num("seed", 0);
  const n = num("n", base.demo.images);
  const imageSize = num("image-size", base.demo.image_size);
  const hardFraction = num("hard-fraction", base.demo.hard_fraction);
  const overrides = json<ShapeOverrides>("model", {});
  const sftOver = json<Record<string, unknown>>("sft", {});
  const dataRoot = arg("data-dir") ?? "/tmp/vlm-sweep";
  const t0 = performance.now();
  const secs = (a: number) => Math.round((performance.now() - a) / 100) / 10;

  const tData = performance.now();
  const dataOver = json<Record<string, unknown>>("data", {});
  const manifest = await synthCached(dataRoot, n, seed, imageSize, hardFraction, base.demo.offensive_rate, (dataOver.val_fraction as number) ?? 0.1, (dataOver.test_fraction as number) ?? 0.1);
  const dataSeconds = secs(tData);

  const work = arg("keep") ?? fs.mkdtempSync(path.join(os.tmpdir(), "vlm-sweep-run-"));
  const baseDir = path.join(work, "base-model");
  const visionInit = arg("vision-init") ?? base.demo.vision_init;
  if (visionInit !== "siglip" && visionInit !== "initializer_range") throw new Error(`--vision-init: expected siglip or initializer_range, got '${visionInit}'`);
  const init = await initOverridden({ preset: arg("preset") ?? base.demo.preset, overrides, outDir: baseDir, seed, visionInit, initStd: base.demo.init_std });
  const raw = structuredClone(base) as unknown as Record<string, unknown>;
  raw.seed = seed;
  raw.model = baseDir;
  raw.output_dir = path.join(work, "sft");
  raw.data = { ...(raw.data as object), ...dataOver, path: manifest };
  raw.sft = { ...(raw.sft as object), ...sftOver };
  const cfg: RunConfig = validate(runConfigSchema, raw, { file: "demo_sweep" });
  const splits = await loadSplits(cfg.data);

  // --score-model DIR: score an already trained model instead of training one (e.g. a demo run's sft/final).
  const scoreModel = arg("score-model");
  const tSft = performance.now();
  const sft = scoreModel ? { finalModelDir: scoreModel, losses: [] as number[] } : await runSft(cfg, { progress: false, log: () => {} });
  const sftSeconds = secs(tSft);

  const tEval = performance.now();
  const policy = await loadPolicy(policyOptions(cfg, { train: false, modelDir: sft.finalModelDir! }));
  const res: Record<string, unknown> = {};
  try {
    res.val = summarize(splits.val, await probeScores(policy, splits.val));
    res.test = summarize(splits.test, await probeScores(policy, splits.test));
    const probeN = num("probe-n", 0);
    if (probeN > 0) {
      const pm = await synthCached(dataRoot, probeN, 10_000 + seed, imageSize, hardFraction, base.demo.offensive_rate);
      const ps = await loadSplits({ ...cfg.data, path: pm });
      const all = [...ps.train, ...ps.val, ...ps.test];
      res.probe = summarize(all, await probeScores(policy, all));
    }
  } finally {
    policy.dispose();
  }
  const evalSeconds = secs(tEval);
  if (!arg("keep")) fs.rmSync(work, { recursive: true, force: true });
  const losses = sft.losses;
  console.log(
    JSON.stringify({
      tag: arg("tag") ?? "",
      seed,
      n,
      image_size: imageSize,
      hard_fraction: hardFraction,
      model: overrides,
      sft: sftOver,
      params: init.numParameters,
      image_tokens: init.config.imageSeqLen,
      train: splits.train.length,
      ...res,
      seconds: { data: dataSeconds, sft: sftSeconds, eval: evalSeconds, total: secs(t0) },
      load: os.loadavg()[0],
      final_loss: losses.length ? Math.round((losses.slice(-20).reduce((a: number, b: number) => a + b, 0) / Math.min(20, losses.length)) * 1e4) / 1e4 : null,
    }),
  );
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
