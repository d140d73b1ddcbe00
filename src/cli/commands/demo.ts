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
import { formatSubsetTable } from "../../eval/subset_table.js";
import { formatPriceTable, priceSentence } from "../../eval/price_table.js";
import { type EvalTarget, runEvaluation } from "../../eval/run_eval.js";
import { trainingCharts } from "../../eval/training_charts.js";
import { setProgressContext } from "../../io/progress.js";
import { getBlasThreads, setBlasThreads } from "../../torch/index.js";
import { DemoEta, demoStages } from "../demo_eta.js";
import { type RunConfig, runConfigSchema } from "../../config/run_config.js";
import { loadSplits } from "../../data/splits_from_config.js";
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
  --unblur        --eval.unblur true
On a machine shared with other jobs, run it with VLM_NUM_THREADS=1 (two
intra-op threads then wait on each other's time slices: 5-8x slower SFT).`;

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
  // Split sizes as the data section will draw them (for the time estimates only).
  const testN = Math.round(d.images * base.data.test_fraction);
  const valN = Math.round(d.images * base.data.val_fraction);
  const trainN = d.images - testN - valN;
  // GRPO's held-out evaluations: every eval_every steps, and after the last step when it is not one of those.
  const g = base.grpo;
  const heldOutRuns = g.eval_every > 0 ? Math.floor(g.steps / g.eval_every) + (g.final_eval && g.steps % g.eval_every !== 0 ? 1 : 0) : g.final_eval ? 1 : 0;
  const grpoEvalImages = heldOutRuns * (g.eval_examples === 0 ? valN : Math.min(g.eval_examples, valN));
  const eta = new DemoEta(
    demoStages({ n: d.images, train: trainN, test: testN, sftEpochs: base.sft.epochs, grpoSteps: base.grpo.steps, grpoEvalImages, ablation: ablation === "symmetric", model: `'${d.preset}' ${d.arch}` }),
  );
  setProgressContext((snap) => eta.context(snap));
  // The demo's model is small: its matmuls gain nothing from OpenBLAS's own
  // threads, which then compete with libtorch's intra-op threads for the
  // cores (one BLAS thread trains it ~2.3x faster on 2 cores; BENCHMARKS.md,
  // "What makes the demo model see"). VLM_BLAS_THREADS, when set, wins.
  const blasBefore = getBlasThreads();
  const setBlas = process.env.VLM_BLAS_THREADS === undefined && blasBefore !== null;
  if (setBlas) setBlasThreads(1);
  fs.mkdirSync(out, { recursive: true });
  try {
    console.log(eta.begin("data"));
    const dataDir = path.join(out, "data");
    // The synthetic set's splits are the data section's fractions (a manifest's splits win over the config's at load time).
    const fractions = { train: 1 - base.data.val_fraction - base.data.test_fraction, val: base.data.val_fraction, test: base.data.test_fraction };
    await runDataSynth({ outDir: dataDir, seed, overwrite: true, n: d.images, offensiveRate: d.offensive_rate, imageSize: d.image_size, hardFraction: d.hard_fraction, fractions });

    console.log(eta.begin("init"));
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

    console.log(eta.begin("sft"));
    // A demo re-run starts its stages afresh (as its data and base model are drawn anew).
    const sft = await runSft(cfgFor(baseDir, path.join(out, "sft")), { overwrite: true });
    // A signal stopped it (its checkpoint is saved): stop here, with that signal's exit code (130 / 143),
    // rather than train GRPO on a half-trained model.
    if (sft.stoppedEarly || !sft.finalModelDir) {
      console.log(`demo: stopped during SFT; nothing after it was run (resume it by hand: vlm-grpo sft --config ${path.join(out, "sft", "sft_config.yaml")} --resume auto)`);
      return runExitCode(sft, (l) => console.error(`vlm-grpo demo: sft: ${l}`));
    }
    const sftModel = sft.finalModelDir;

    console.log(eta.begin("grpo"));
    const grpo = await runGrpo(cfgFor(sftModel, path.join(out, "grpo")), { overwrite: true });
    if (grpo.stoppedEarly || !grpo.finalModelDir) {
      console.log("demo: stopped during GRPO; nothing after it was run");
      return runExitCode(grpo, (l) => console.error(`vlm-grpo demo: grpo: ${l}`));
    }
    const targets: EvalTarget[] = [
      { name: "base", model: baseDir },
      { name: "sft", model: sftModel },
      { name: "grpo", model: grpo.finalModelDir! },
    ];
    const grpoLogs = [{ name: "grpo", file: path.join(out, "grpo", "metrics.jsonl") }];
    if (ablation === "symmetric") {
      console.log(eta.begin("grpo_symmetric"));
      const sym = await runGrpo(cfgFor(sftModel, path.join(out, "grpo-symmetric"), (r) => ((r.grpo as Record<string, unknown>).rewards = [SYMMETRIC_REWARD, { name: "format" }])), { overwrite: true });
      if (sym.stoppedEarly || !sym.finalModelDir) return runExitCode(sym, (l) => console.error(`vlm-grpo demo: grpo-symmetric: ${l}`));
      targets.push({ name: "grpo_symmetric", model: sym.finalModelDir });
      grpoLogs.push({ name: "grpo_symmetric", file: path.join(out, "grpo-symmetric", "metrics.jsonl") });
    }

    console.log(eta.begin("eval"));
    const evalCfg = cfgFor(baseDir, out);
    const splits = await loadSplits(evalCfg.data);
    const title = "vlm-grpo demo: base vs SFT vs GRPO (synthetic stand-in data)";
    // The report gets the training curves and the price of recall beside the evaluation.
    const res = await runEvaluation(evalCfg, targets, splits.test, out, {
      title,
      reportExtras: { trainingCharts: trainingCharts({ name: "sft", file: path.join(out, "sft", "metrics.jsonl") }, grpoLogs), priceBaseline: "sft" },
    });
    const reportPath = res.reportPath;
    eta.finish();
    const priced = res.evaluations.filter((r) => r.name !== "base").map((r) => ({ name: r.name, metrics: r.metrics, rocAuc: r.curves?.roc_auc ?? null }));
    const sentences = priced.slice(1).map((r) => priceSentence(r, priced[0])).filter((x): x is string => x !== null);
    // Which step select_best kept, and on what val figures.
    const kept = grpo.selected;
    if (kept) {
      const within = kept.fpr <= base.grpo.select_max_fpr ? `the best within val FPR ${base.grpo.select_max_fpr}` : `none was within val FPR ${base.grpo.select_max_fpr}: the lowest FPR`;
      sentences.push(`grpo's model is step ${kept.step} of ${grpo.steps} (held-out evaluations every ${base.grpo.eval_every} steps; ${within}: val recall ${kept.recall.toFixed(3)}, FPR ${kept.fpr.toFixed(3)})`);
    }
    const m0 = res.evaluations[0].metrics;
    // Where the misses are: the synthetic set marks its hard subset (look-alikes, small and partly hidden objects).
    const bySubset = res.subsets?.filter((r) => r.run !== "base") ?? null;
    const summary = [
      res.table,
      `What the recall costs (test split: ${m0.positives} offensive, ${m0.negatives} safe images):`,
      formatPriceTable(priced),
      ...(bySubset ? ["By subset (the manifest's hard flag: look-alikes, small and partly hidden objects):", formatSubsetTable(bySubset)] : []),
      ...sentences,
      "",
      `metrics: ${res.metricsPath}`,
      `report:  ${reportPath ?? "(off)"}`,
      `total time: ${((performance.now() - t0) / 60000).toFixed(1)} min`,
    ].join("\n");
    writeTextFileAtomic(path.join(out, "summary.txt"), summary + "\n");
    console.log(`\n${summary}`);
  } finally {
    setProgressContext(null);
    if (setBlas) setBlasThreads(blasBefore!);
  }
  return 0;
}
