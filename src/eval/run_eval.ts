// Evaluation of one or more model folders on a split: greedy answers parsed
// into decisions, plus a score per image, P(offensive) = 1 - P(the answer
// starts with "safe"), read from the model's next-token distribution right
// after "<answer>" (one extra prefill per batch). Recall first, then
// precision, F1/F2, FPR, per-category figures, curves, and the threshold
// that reaches a target recall.
import fs from "node:fs";
import path from "node:path";
import { policyOptions } from "../config/policy_options.js";
import type { RunConfig } from "../config/run_config.js";
import type { Example } from "../data/types.js";
import { writeTextFileAtomic } from "../io/atomic.js";
import { Progress } from "../io/progress.js";
import { loadPolicy } from "../policy/policy.js";
import { DataParallel } from "../torch/index.js";
import { formatCompareTable } from "./compare_table.js";
import { type Curves, curvesFromPredictions, thresholdForRecall, type ThresholdChoice } from "./curves.js";
import { computeMetrics, type EvalMetrics, type Prediction } from "./metrics.js";
import { writeReport } from "./report.js";
import { classifyAcrossRanks } from "./sharded.js";

export interface EvalTarget {
  /** Name in tables and metrics.json (e.g. base, sft, grpo). */
  name: string;
  /** HF model folder. */
  model: string;
  /** Optional PEFT adapter folder applied on top. */
  lora?: string;
}

export interface ModelEvaluation {
  name: string;
  metrics: EvalMetrics;
  curves: Curves | null;
  threshold: ThresholdChoice | null;
  predictions: Prediction[];
  seconds: number;
}

/** Evaluates one model on examples (split across the ranks of opts.dp; every rank gets the whole result). */
export async function evaluateModel(cfg: RunConfig, target: EvalTarget, examples: Example[], opts: { log?: (l: string) => void; progress?: boolean; dp?: DataParallel } = {}): Promise<ModelEvaluation> {
  const t0 = performance.now();
  const dp = opts.dp ?? DataParallel.single();
  const policy = await loadPolicy(policyOptions(cfg, { train: false, modelDir: target.model, adapterDir: target.lora }));
  try {
    const e = cfg.eval;
    const progress = opts.progress === false || !dp.isMain ? null : new Progress({ total: examples.length, label: `eval ${target.name}`, unit: "img" });
    let done = 0;
    const results = await classifyAcrossRanks(dp, policy, examples, {
      batchSize: e.batch_size,
      maxNewTokens: e.max_new_tokens,
      onBatch: (n) => {
        progress?.tick(n - done);
        done = n;
      },
    });
    progress?.done();
    const predictions: Prediction[] = results.map((r, k) => {
      const x = examples[k];
      const p = r.parsed;
      return {
        id: x.id,
        labels: x.labels,
        predicted: p.kind === "offensive" ? { kind: "offensive", categories: p.categories } : p.kind === "safe" ? { kind: "safe" } : { kind: "unparseable" },
        score: r.score,
        imagePath: "path" in x.image ? x.image.path : undefined,
        answer: r.answer,
      } as Prediction;
    });
    const metrics = computeMetrics(predictions, { categories: policy.prompt.categories, unparseableAs: e.unparseable_as });
    const curves = predictions.length ? curvesFromPredictions(predictions) : null;
    const threshold = curves ? thresholdForRecall(curves, e.target_recall) : null;
    return { name: target.name, metrics, curves, threshold, predictions, seconds: (performance.now() - t0) / 1000 };
  } finally {
    policy.dispose();
  }
}

/** The JSON form of one evaluation (metrics.json's value per model). */
export function evaluationJson(r: ModelEvaluation, targetRecall: number): Record<string, unknown> {
  return {
    ...r.metrics,
    roc_auc: r.curves?.roc_auc ?? null,
    average_precision: r.curves?.average_precision ?? null,
    recall_at_fpr: r.curves?.recall_at_fpr ?? [],
    threshold_for_target_recall: r.threshold ? { target_recall: targetRecall, ...r.threshold } : null,
    seconds: r.seconds,
  };
}

export interface EvalRunResult {
  evaluations: ModelEvaluation[];
  table: string;
  metricsPath: string;
  reportPath: string | null;
}

/** Evaluates targets on the examples, writes metrics.json (and report.html) under outDir, returns the table. */
export async function runEvaluation(cfg: RunConfig, targets: EvalTarget[], examples: Example[], outDir: string, opts: { log?: (l: string) => void; progress?: boolean; title?: string; dp?: DataParallel } = {}): Promise<EvalRunResult> {
  const dp = opts.dp ?? DataParallel.single();
  const log = dp.isMain ? (opts.log ?? ((l: string) => console.log(l))) : () => {};
  if (examples.length === 0) throw new Error(`eval: the ${cfg.eval.split} split is empty`);
  const list = cfg.eval.max_examples > 0 ? examples.slice(0, cfg.eval.max_examples) : examples;
  const evaluations: ModelEvaluation[] = [];
  for (const t of targets) {
    log(`eval: ${t.name} (${t.model}${t.lora ? ` + ${t.lora}` : ""}) on ${list.length} ${cfg.eval.split} images`);
    evaluations.push(await evaluateModel(cfg, t, list, { ...opts, dp }));
  }
  const table = formatCompareTable(evaluations.map((r) => ({ name: r.name, metrics: r.metrics, curves: r.curves })));
  const metricsPath = path.join(outDir, "metrics.json");
  // Every rank holds the same results; rank 0 writes them.
  if (!dp.isMain) return { evaluations, table, metricsPath, reportPath: null };
  fs.mkdirSync(outDir, { recursive: true });
  const json = Object.fromEntries(evaluations.map((r) => [r.name, evaluationJson(r, cfg.eval.target_recall)]));
  writeTextFileAtomic(metricsPath, JSON.stringify(json, null, 2) + "\n");
  const predPath = path.join(outDir, "predictions.jsonl");
  writeTextFileAtomic(predPath, evaluations.flatMap((r) => r.predictions.map((p) => JSON.stringify({ model: r.name, ...p }))).join("\n") + "\n");
  let reportPath: string | null = null;
  if (cfg.eval.report) {
    reportPath = await writeReport(outDir, {
      runs: evaluations.map((r) => ({ name: r.name, metrics: r.metrics, curves: r.curves, predictions: r.predictions })),
      categories: [...cfg.data.categories],
      unblur: cfg.eval.unblur,
      title: opts.title ?? "vlm-grpo evaluation",
      recallTargets: [cfg.eval.target_recall],
    });
  }
  return { evaluations, table, metricsPath, reportPath };
}
