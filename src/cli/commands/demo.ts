// `vlm-grpo demo`: the whole method on a laptop CPU, no download. Synthesize
// the stand-in dataset, initialize a tiny SmolVLM-architecture model, SFT
// warm-up, GRPO with the recall-first reward, then evaluate base, SFT and
// GRPO side by side on the held-out test split (metrics.json, report.html).
// `--ablation symmetric` adds a GRPO run with a symmetric reward (+1/-1 both
// ways) so the table shows what the asymmetric reward buys.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../config/load.js";
import { validate } from "../../config/schema.js";
import { runDataSynth } from "../../data/synth/writer.js";
import { type EvalTarget, runEvaluation } from "../../eval/run_eval.js";
import type { TrainingChart } from "../../eval/report.js";
import { type RunConfig, runConfigSchema } from "../../config/run_config.js";
import { loadSplits } from "../../data/splits_from_config.js";
import { readJsonl } from "../../io/sinks/jsonl.js";
import { initModel } from "../../models/init_model.js";
import { runGrpo } from "../../train/grpo.js";
import { runSft } from "../../train/sft.js";
import { runExitCode } from "../../train/stop.js";
import { writeTextFileAtomic } from "../../io/atomic.js";
import { flag, has, parseArgs, UsageError } from "../args.js";

/** The demo's values: configs/demo.yaml of this package (every value the demo changes from the schema's defaults). */
export const DEMO_CONFIG_FILE = fileURLToPath(new URL("../../../../configs/demo.yaml", import.meta.url));

/** The demo's resolved config: its YAML file plus overrides (dotted keys, as every command takes them). */
export function loadDemoConfig(file = DEMO_CONFIG_FILE, overrides: readonly string[] = []): RunConfig {
  return loadConfig(runConfigSchema, { file, overrides });
}

const SYMMETRIC_REWARD = { name: "recall", options: { truePositive: 1, falseNegative: -1, falsePositive: -1, trueNegative: 1 } };

const USAGE = `usage: vlm-grpo demo [--out DIR] [--seed S] [--ablation symmetric] [--n N] [--sft-epochs E] [--grpo-steps N] [--arch A] [--preset P] [--unblur]
                     [--config FILE] [--section.key VALUE ...]
Runs the whole pipeline on a synthetic stand-in dataset with a small randomly
initialized model: synth data, SFT warm-up, GRPO with the recall-first reward,
and an evaluation of base, SFT and GRPO side by side. Its values are
configs/demo.yaml (--config to use another file); any key can be overridden
with a dotted flag (--grpo.lr 1e-4); the short flags are aliases:
  --seed S        --seed (data, init, training)     --n N          --demo.images
  --sft-epochs E  --sft.epochs                      --grpo-steps N --grpo.steps
  --arch A        --demo.arch                       --preset P     --demo.preset
  --unblur        --eval.unblur true`;

function chartsFrom(runs: { name: string; file: string }[], metric: string, title: string): TrainingChart | null {
  const series = runs
    .filter((r) => fs.existsSync(r.file))
    .map((r) => ({ name: r.name, points: readJsonl(r.file).filter((x) => Number.isFinite(x.metrics[metric])).map((x) => [x.step, x.metrics[metric]] as [number, number]) }))
    .filter((s) => s.points.length > 0);
  return series.length ? { title, series, xLabel: "step", yLabel: metric } : null;
}

/** The short flags, as the dotted overrides they stand for. */
const ALIASES: Record<string, string> = { seed: "seed", n: "demo.images", "sft-epochs": "sft.epochs", "grpo-steps": "grpo.steps", arch: "demo.arch", preset: "demo.preset" };

export async function demoCommand(argv: readonly string[]): Promise<number> {
  const p = parseArgs(
    argv,
    {
      out: { value: true },
      config: { value: true },
      ablation: { value: true },
      unblur: { value: false },
      help: { value: false },
      ...Object.fromEntries(Object.keys(ALIASES).map((k) => [k, { value: true }])),
    },
    { allowOverrides: true },
  );
  if (has(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  if (p.positionals.length) throw new UsageError(`unexpected argument '${p.positionals[0]}' (options start with --)`);
  const ablation = flag(p, "ablation");
  if (ablation !== undefined && ablation !== "symmetric") throw new UsageError(`--ablation: the only ablation is 'symmetric', got '${ablation}'`);
  const overrides = [...p.overrides];
  for (const [f, key] of Object.entries(ALIASES)) {
    const v = flag(p, f);
    if (v !== undefined) overrides.push(`--${key}`, v);
  }
  if (has(p, "unblur")) overrides.push("--eval.unblur", "true");
  const base = loadDemoConfig(flag(p, "config") ?? DEMO_CONFIG_FILE, overrides);
  const d = base.demo;
  const out = path.resolve(flag(p, "out") ?? "runs/demo");
  const seed = base.seed;
  const t0 = performance.now();
  const stamp = () => `[${((performance.now() - t0) / 1000).toFixed(0)}s]`;
  fs.mkdirSync(out, { recursive: true });

  console.log(`${stamp()} demo: 1/5 synthesizing the stand-in dataset`);
  const dataDir = path.join(out, "data");
  await runDataSynth({ outDir: dataDir, seed, overwrite: true, n: d.images, offensiveRate: d.offensive_rate, imageSize: d.image_size, hardFraction: d.hard_fraction });

  console.log(`${stamp()} demo: 2/5 initializing a '${d.preset}' ${d.arch} model`);
  const baseDir = path.join(out, "base-model");
  const init = await initModel({ arch: d.arch, preset: d.preset, outDir: baseDir, seed, visionInit: d.vision_init, initializerRange: d.init_std });
  console.log(`  ${init.numParameters.toLocaleString("en-US")} parameters, vocab ${init.vocabSize}`);

  const cfgFor = (model: string, outputDir: string, patch: (r: Record<string, unknown>) => void = () => {}): RunConfig => {
    const r = structuredClone(base) as unknown as Record<string, unknown>;
    r.model = model;
    r.output_dir = outputDir;
    (r.data as Record<string, unknown>).path = path.join(dataDir, "manifest.jsonl");
    patch(r);
    return validate(runConfigSchema, r, { file: "demo config" });
  };
  fs.writeFileSync(path.join(out, "demo_config.json"), JSON.stringify(cfgFor(baseDir, out), null, 2) + "\n");

  console.log(`${stamp()} demo: 3/5 SFT warm-up`);
  // A demo re-run starts its stages afresh (as its data and base model are drawn anew).
  const sft = await runSft(cfgFor(baseDir, path.join(out, "sft")), { overwrite: true });
  // A stage a signal stopped ends the demo with that signal's exit code (130 / 143).
  if (!sft.finalModelDir) return runExitCode(sft, (l) => console.error(`vlm-grpo demo: sft: ${l}`));
  const sftModel = sft.finalModelDir;

  console.log(`${stamp()} demo: 4/5 GRPO with the recall-first reward (TP +1, FN -1, FP -0.2, TN +0.1)`);
  const grpo = await runGrpo(cfgFor(sftModel, path.join(out, "grpo")), { overwrite: true });
  if (!grpo.finalModelDir) return runExitCode(grpo, (l) => console.error(`vlm-grpo demo: grpo: ${l}`));
  const targets: EvalTarget[] = [
    { name: "base", model: baseDir },
    { name: "sft", model: sftModel },
    { name: "grpo", model: grpo.finalModelDir! },
  ];
  const logs = [
    { name: "sft", file: path.join(out, "sft", "metrics.jsonl") },
    { name: "grpo", file: path.join(out, "grpo", "metrics.jsonl") },
  ];
  if (ablation === "symmetric") {
    console.log(`${stamp()} demo: 4b/5 ablation: GRPO with a symmetric reward (+1/-1 both ways)`);
    const sym = await runGrpo(cfgFor(sftModel, path.join(out, "grpo-symmetric"), (r) => ((r.grpo as Record<string, unknown>).rewards = [SYMMETRIC_REWARD, { name: "format" }])), { overwrite: true });
    if (!sym.finalModelDir) return runExitCode(sym, (l) => console.error(`vlm-grpo demo: grpo-symmetric: ${l}`));
    targets.push({ name: "grpo_symmetric", model: sym.finalModelDir });
    logs.push({ name: "grpo_symmetric", file: path.join(out, "grpo-symmetric", "metrics.jsonl") });
  }

  console.log(`${stamp()} demo: 5/5 evaluating ${targets.map((t) => t.name).join(", ")} on the held-out test split`);
  const evalCfg = cfgFor(baseDir, out);
  const splits = await loadSplits(evalCfg.data);
  const res = await runEvaluation(evalCfg, targets, splits.test, out, { title: "vlm-grpo demo: base vs SFT vs GRPO (synthetic stand-in data)" });
  // Training curves next to the evaluation.
  const charts = [chartsFrom(logs.slice(0, 1), "train/loss", "SFT loss"), chartsFrom(logs.slice(1), "reward/total_mean", "GRPO mean reward"), chartsFrom(logs.slice(1), "batch/recall", "GRPO batch recall (sampled answers)")].filter(
    (c): c is TrainingChart => c !== null,
  );
  if (charts.length && res.reportPath) {
    const { writeReport } = await import("../../eval/report.js");
    await writeReport(out, {
      runs: res.evaluations.map((r) => ({ name: r.name, metrics: r.metrics, curves: r.curves, predictions: r.predictions })),
      categories: [...evalCfg.data.categories],
      unblur: evalCfg.eval.unblur,
      title: "vlm-grpo demo: base vs SFT vs GRPO (synthetic stand-in data)",
      recallTargets: [evalCfg.eval.target_recall],
      trainingCharts: charts,
    });
  }
  const summary = `${res.table}\n\nmetrics: ${res.metricsPath}\nreport:  ${res.reportPath ?? "(off)"}\ntotal time: ${((performance.now() - t0) / 60000).toFixed(1)} min`;
  writeTextFileAtomic(path.join(out, "summary.txt"), summary + "\n");
  console.log(`\n${summary}`);
  return 0;
}
