// Evaluation of one or more model folders on a split.
//
// Each model classifies the evaluated split (policy/classify.ts: a greedy
// answer and the answer-distribution scores) and, when given, the threshold
// split (validation by default). Every decision goes through
// policy/decide.ts, the function predict and the server use:
//   - the answer rule gives the headline metrics (recall first, then
//     precision, F1/F2, FPR, per category; curves from the raw score), with
//     Wilson intervals on recall and FPR and a warning when they rest on few
//     images;
//   - on the threshold split the offensive score is calibrated (Platt
//     scaling, eval/calibration.ts) and threshold sets are chosen per target
//     recall (eval/choose_thresholds.ts); the same sets then decide the
//     evaluated split, which shows what they hold on images they were not
//     chosen on;
//   - thresholds already saved in the model's card (an earlier
//     `eval --save-thresholds`) decide the evaluated split too.
import fs from "node:fs";
import path from "node:path";
import { policyOptions } from "../config/policy_options.js";
import type { RunConfig } from "../config/run_config.js";
import type { PromptConfig, PromptOptions } from "../data/prompt.js";
import type { Example } from "../data/types.js";
import { writeTextFileAtomic } from "../io/atomic.js";
import { Progress } from "../io/progress.js";
import { type Classification, classifyExamples } from "../policy/classify.js";
import { decide, type DecisionRule, ruleFromSet } from "../policy/decide.js";
import { cardPromptDifferences, saveThresholds } from "../policy/model_card.js";
import { loadPolicy, type Policy } from "../policy/policy.js";
import { calibrate, thresholdSetFor, type ThresholdRecord } from "../policy/thresholds.js";
import { type CalibrationCheck, checkCalibration, fitPlatt } from "./calibration.js";
import { chooseThresholds, type LabelledClassification } from "./choose_thresholds.js";
import { DataParallel } from "../torch/index.js";
import { formatCompareTable } from "./compare_table.js";
import { type Curves, curvesFromPredictions, thresholdForRecall, type ThresholdChoice } from "./curves.js";
import { type RatesWithIntervals, ratesWithIntervals } from "./intervals.js";
import { computeMetrics, type EvalMetrics, type PredictedLabel, type Prediction } from "./metrics.js";
import { type ReportOptions, writeReport } from "./report.js";
import { formatThresholdTable } from "./threshold_table.js";
import { type SubsetRow, subsetRows } from "./subset_table.js";
import { classifyAcrossRanks } from "./sharded.js";

export interface EvalTarget {
  /** Name in tables and metrics.json (e.g. base, sft, grpo). */
  name: string;
  /** HF model folder. */
  model: string;
  /** Optional PEFT adapter folder applied on top. */
  lora?: string;
}

/** Decisions of one rule on the evaluated split. */
export interface RuleEvaluation {
  /** "thresholds chosen on val, target recall 0.95" or "saved thresholds ...". */
  label: string;
  target_recall: number;
  /** Overall threshold (calibrated score when calibrated). */
  threshold: number;
  metrics: EvalMetrics;
  intervals: RatesWithIntervals;
}

/** The calibration fitted on the threshold split, and what it does there and on the evaluated split. */
export interface CalibrationReport {
  method: "platt";
  a: number;
  b: number;
  fitted_on: { split: string; images: number };
  on_fit_split: CalibrationCheck;
  on_eval_split: CalibrationCheck;
}

export interface ModelEvaluation {
  name: string;
  /** Answer-rule metrics on the evaluated split. */
  metrics: EvalMetrics;
  intervals: RatesWithIntervals;
  /** From the raw offensive score. */
  curves: Curves | null;
  /** The raw-score threshold reaching eval.target_recall on the evaluated split itself (optimistic; kept for comparison). */
  threshold: ThresholdChoice | null;
  predictions: Prediction[];
  /** The prompt the model was asked with (its card's unless overridden). */
  prompt: PromptConfig;
  /** Calibration fitted on the threshold split (null: off, no threshold split, or not fittable: see calibrationNote). */
  calibration: CalibrationReport | null;
  calibrationNote: string | null;
  /** Thresholds chosen on the threshold split (null without one, or with no offensive image there). */
  thresholds: ThresholdRecord | null;
  /** Those thresholds deciding the evaluated split, one per target recall. */
  atThresholds: RuleEvaluation[];
  /** The model card's saved default set deciding the evaluated split, if the card has thresholds. */
  atSavedThresholds: RuleEvaluation | null;
  seconds: number;
}

export interface EvaluateOptions {
  log?: (l: string) => void;
  progress?: boolean;
  /**
   * Prompt fields to ask with; fields left out come from each model's card,
   * else the built-in defaults. Absent: the config's whole prompt (prompt.*
   * and data.categories), as before cards existed.
   */
  prompt?: PromptOptions;
  /** Images to fit the calibration and choose thresholds on; absent: none chosen. */
  thresholdExamples?: Example[];
  /** That split's name, for the record (default cfg.eval.threshold_split). */
  thresholdSplit?: string;
  /** Ranks to split the classification across (every rank gets the whole result); default one process. */
  dp?: DataParallel;
}

/** The config's whole prompt as policy options. */
export function configPrompt(cfg: RunConfig): PromptOptions {
  return policyOptions(cfg, { train: false }).prompt;
}

/** The answer rule's decision as the metrics' PredictedLabel (unparseable kept as such: computeMetrics counts it by eval.unparseable_as). */
function answerLabel(c: Classification): PredictedLabel {
  const d = decide(c, { kind: "answer" });
  if (d.answerKind === "unparseable" || d.answerKind === "error") return { kind: "unparseable" };
  return d.flagged ? { kind: "offensive", categories: d.categories } : { kind: "safe" };
}

/** Metrics of a rule's decisions over labelled classifications. */
export function evaluateRule(items: readonly LabelledClassification[], rule: DecisionRule, categories: string[], minSupport: number): { metrics: EvalMetrics; intervals: RatesWithIntervals } {
  const preds: Prediction[] = items.map((x) => {
    const d = decide(x.classification, rule);
    return { id: x.classification.id, labels: [...x.labels], predicted: d.flagged ? { kind: "offensive", categories: d.categories } : { kind: "safe" } };
  });
  const metrics = computeMetrics(preds, { categories });
  return { metrics, intervals: ratesWithIntervals(metrics.confusion, minSupport) };
}

async function classifyWithProgress(policy: Policy, cfg: RunConfig, examples: Example[], label: string, progress: boolean, dp: DataParallel): Promise<Classification[]> {
  // Each rank counts its own share; rank 0's bar shows its part of the total.
  const bar = progress && dp.isMain ? new Progress({ total: Math.ceil(examples.length / dp.worldSize), label, unit: "img" }) : null;
  let done = 0;
  const out = await classifyAcrossRanks(dp, policy, examples, {
    batchSize: cfg.eval.batch_size,
    maxNewTokens: cfg.eval.max_new_tokens,
    onBatch: (n) => {
      bar?.tick(n - done);
      done = n;
    },
  });
  bar?.done();
  return out;
}

const labelled = (cs: Classification[], xs: Example[]): LabelledClassification[] => cs.map((c, k) => ({ classification: c, labels: xs[k].labels }));

/** Evaluates one model on examples (see the file header). */
export async function evaluateModel(cfg: RunConfig, target: EvalTarget, examples: Example[], opts: EvaluateOptions = {}): Promise<ModelEvaluation> {
  const t0 = performance.now();
  const e = cfg.eval;
  const dp = opts.dp ?? DataParallel.single();
  const policy = await loadPolicy({ ...policyOptions(cfg, { train: false, modelDir: target.model, adapterDir: target.lora }), prompt: opts.prompt ?? configPrompt(cfg), imageCache: false });
  try {
    const categories = policy.prompt.categories;
    const progress = opts.progress !== false;
    const results = await classifyWithProgress(policy, cfg, examples, `eval ${target.name}`, progress, dp);
    const evalItems = labelled(results, examples);
    const predictions: Prediction[] = results.map((r, k) => {
      const x = examples[k];
      return {
        id: x.id,
        labels: x.labels,
        predicted: answerLabel(r),
        score: r.score,
        category_scores: r.categoryScores,
        imagePath: "path" in x.image ? x.image.path : undefined,
        answer: r.answer,
      } as Prediction;
    });
    const metrics = computeMetrics(predictions, { categories, unparseableAs: e.unparseable_as });
    const intervals = ratesWithIntervals(metrics.confusion, e.min_support);
    const curves = predictions.length ? curvesFromPredictions(predictions) : null;
    const threshold = curves ? thresholdForRecall(curves, e.target_recall) : null;

    // Calibration and thresholds on the threshold split.
    let calibration: CalibrationReport | null = null;
    let calibrationNote: string | null = null;
    let thresholds: ThresholdRecord | null = null;
    const atThresholds: RuleEvaluation[] = [];
    const tx = opts.thresholdExamples;
    const split = opts.thresholdSplit ?? e.threshold_split;
    if (tx && tx.length > 0) {
      const same = tx === examples;
      const fitItems = same ? evalItems : labelled(await classifyWithProgress(policy, cfg, tx, `${split} ${target.name}`, progress, dp), tx);
      const fitScores = fitItems.map((x) => x.classification.score);
      const fitTruth = fitItems.map((x) => x.labels.length > 0);
      if (e.calibrate) {
        const fit = fitPlatt(fitScores, fitTruth);
        if (fit.ok) {
          const onFit = checkCalibration(fitScores, fitTruth, fit.calibration);
          const onEval = checkCalibration(
            results.map((r) => r.score),
            examples.map((x) => x.labels.length > 0),
            fit.calibration,
          );
          calibration = { ...fit.calibration, fitted_on: { split, images: tx.length }, on_fit_split: onFit, on_eval_split: onEval };
        } else calibrationNote = `calibration not fitted on ${split}: ${fit.reason}`;
      } else calibrationNote = "calibration off (eval.calibrate: false)";
      const cal = calibration ? { method: calibration.method, a: calibration.a, b: calibration.b, ece_before: calibration.on_fit_split.ece_before!, ece_after: calibration.on_fit_split.ece_after! } : null;
      thresholds = chooseThresholds(fitItems, {
        categories,
        targetRecalls: e.threshold_recalls,
        defaultTargetRecall: e.target_recall,
        calibration: cal,
        minSupport: e.min_support,
        split: same ? `${split} (the evaluated images themselves)` : split,
        data: path.resolve(cfg.data.path),
      });
      if (thresholds) {
        for (const set of thresholds.sets) {
          const rule = ruleFromSet(set, thresholds.calibration, `chosen on ${split}`);
          atThresholds.push({ label: `chosen on ${split}`, target_recall: set.target_recall, threshold: set.overall.threshold, ...evaluateRule(evalItems, rule, categories, e.min_support) });
        }
      }
    }
    if (calibration) for (const p of predictions) p.calibrated_score = calibrate(p.score!, calibration);
    const record = (key: string, rule: DecisionRule) =>
      results.forEach((c, k) => {
        const d = decide(c, rule);
        predictions[k].decisions = { ...predictions[k].decisions, [key]: { flagged: d.flagged, categories: d.categories, score: d.score, threshold: d.threshold } };
      });
    if (thresholds) record("chosen", ruleFromSet(thresholdSetFor(thresholds, undefined, "eval"), thresholds.calibration, "chosen"));

    // Thresholds saved in the card by an earlier evaluation.
    let atSavedThresholds: RuleEvaluation | null = null;
    // (Only when this evaluation asks the card's own question: thresholds belong to a prompt.)
    const saved = policy.card && cardPromptDifferences(policy.card, policy.prompt).length === 0 ? policy.card.thresholds : null;
    if (saved) {
      const set = thresholdSetFor(saved, undefined, `${target.model} card`);
      const label = `saved (chosen on ${saved.split}, ${saved.chosen_at.slice(0, 10)})`;
      const rule = ruleFromSet(set, saved.calibration, label);
      atSavedThresholds = { label, target_recall: set.target_recall, threshold: set.overall.threshold, ...evaluateRule(evalItems, rule, categories, e.min_support) };
      record("saved", rule);
    }
    return {
      name: target.name,
      metrics,
      intervals,
      curves,
      threshold,
      predictions,
      prompt: policy.prompt,
      calibration,
      calibrationNote,
      thresholds,
      atThresholds,
      atSavedThresholds,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    policy.dispose();
  }
}

/** The JSON form of one evaluation (metrics.json's value per model). */
export function evaluationJson(r: ModelEvaluation, targetRecall: number): Record<string, unknown> {
  return {
    ...r.metrics,
    recall_ci: [r.intervals.recall.lo, r.intervals.recall.hi],
    fpr_ci: [r.intervals.fpr.lo, r.intervals.fpr.hi],
    few_images: r.intervals.few_images,
    warnings: r.intervals.warnings,
    roc_auc: r.curves?.roc_auc ?? null,
    average_precision: r.curves?.average_precision ?? null,
    recall_at_fpr: r.curves?.recall_at_fpr ?? [],
    threshold_for_target_recall: r.threshold ? { target_recall: targetRecall, ...r.threshold } : null,
    calibration: r.calibration,
    calibration_note: r.calibrationNote,
    thresholds: r.thresholds,
    at_thresholds: r.atThresholds.map(ruleJson),
    at_saved_thresholds: r.atSavedThresholds ? ruleJson(r.atSavedThresholds) : null,
    prompt: { system_prompt: r.prompt.systemPrompt ?? "", user_prompt: r.prompt.userPrompt, allow_think: r.prompt.allowThink, categories: r.prompt.categories },
    seconds: r.seconds,
  };
}

function ruleJson(x: RuleEvaluation): Record<string, unknown> {
  const m = x.metrics;
  return { label: x.label, target_recall: x.target_recall, threshold: x.threshold, recall: x.intervals.recall, fpr: x.intervals.fpr, precision: m.precision, f2: m.f2, few_images: x.intervals.few_images, warnings: x.intervals.warnings, per_category: m.per_category };
}

export interface EvalRunResult {
  evaluations: ModelEvaluation[];
  table: string;
  /** Recall and FPR of each run on the normal and the hard images (null when no evaluated example is marked hard). */
  subsets: SubsetRow[] | null;
  metricsPath: string;
  reportPath: string | null;
}

export interface RunEvaluationOptions extends EvaluateOptions {
  title?: string;
  /** More for the report: training curves, the run the price of recall is measured against. */
  reportExtras?: Pick<ReportOptions, "trainingCharts" | "priceBaseline">;
}

/** Evaluates targets on the examples, writes metrics.json, predictions.jsonl (and report.html) under outDir, returns the tables. */
export async function runEvaluation(cfg: RunConfig, targets: EvalTarget[], examples: Example[], outDir: string, opts: RunEvaluationOptions = {}): Promise<EvalRunResult> {
  const dp = opts.dp ?? DataParallel.single();
  const log = dp.isMain ? (opts.log ?? ((l: string) => console.log(l))) : () => {};
  if (examples.length === 0) throw new Error(`eval: the ${cfg.eval.split} split is empty`);
  const cap = (xs: Example[]) => (cfg.eval.max_examples > 0 ? xs.slice(0, cfg.eval.max_examples) : xs);
  const list = cap(examples);
  const tx = opts.thresholdExamples === examples ? list : opts.thresholdExamples ? cap(opts.thresholdExamples) : undefined;
  const evaluations: ModelEvaluation[] = [];
  for (const t of targets) {
    log(`eval: ${t.name} (${t.model}${t.lora ? ` + ${t.lora}` : ""}) on ${list.length} ${cfg.eval.split} images${tx && tx !== list ? `; thresholds on ${tx.length} ${opts.thresholdSplit ?? cfg.eval.threshold_split} images` : ""}`);
    evaluations.push(await evaluateModel(cfg, t, list, { ...opts, thresholdExamples: tx, dp }));
  }
  const table =
    formatCompareTable(evaluations.map((r) => ({ name: r.name, metrics: r.metrics, curves: r.curves, intervals: r.intervals }))) +
    formatThresholdTable(evaluations, { split: cfg.eval.split, thresholdSplit: opts.thresholdSplit ?? cfg.eval.threshold_split });
  const subsets = subsetRows(evaluations, list);
  const metricsPath = path.join(outDir, "metrics.json");
  // Every rank holds the same results; rank 0 writes them.
  if (!dp.isMain) return { evaluations, table, subsets, metricsPath, reportPath: null };
  fs.mkdirSync(outDir, { recursive: true });
  const json = Object.fromEntries(evaluations.map((r) => [r.name, evaluationJson(r, cfg.eval.target_recall)]));
  writeTextFileAtomic(metricsPath, JSON.stringify(json, null, 2) + "\n");
  const predPath = path.join(outDir, "predictions.jsonl");
  writeTextFileAtomic(predPath, evaluations.flatMap((r) => r.predictions.map((p) => JSON.stringify({ model: r.name, ...p }))).join("\n") + "\n");
  let reportPath: string | null = null;
  if (cfg.eval.report) {
    const byId = new Map(list.map((x) => [x.id, x.image]));
    reportPath = await writeReport(outDir, {
      runs: evaluations.map((r) => ({ name: r.name, metrics: r.metrics, curves: r.curves, predictions: r.predictions, intervals: r.intervals, calibration: r.calibration, calibrationNote: r.calibrationNote, thresholds: r.thresholds, atThresholds: r.atThresholds, atSavedThresholds: r.atSavedThresholds })),
      categories: [...(evaluations[0]?.prompt.categories ?? cfg.data.categories)],
      unblur: cfg.eval.unblur,
      title: opts.title ?? "vlm-grpo evaluation",
      recallTargets: [cfg.eval.target_recall],
      imageOf: (p) => {
        const ref = byId.get(p.id);
        return ref === undefined ? p.imagePath : "path" in ref ? ref.path : ref.bytes;
      },
      split: cfg.eval.split,
      subsets,
      ...opts.reportExtras,
    });
  }
  return { evaluations, table, subsets, metricsPath, reportPath };
}

/**
 * Saves an evaluation's thresholds (and calibration) into the card of the
 * folder it evaluated: the adapter's when one was applied, else the model's.
 * Returns the card's path.
 */
export function saveEvaluationThresholds(r: ModelEvaluation, target: EvalTarget): string {
  if (!r.thresholds) {
    throw new Error(`eval: no thresholds to save for ${target.name}: ${r.calibrationNote ?? "the threshold split had no offensive image (or is empty)"}; check eval.threshold_split and data.val_fraction`);
  }
  return saveThresholds(target.lora ?? target.model, r.thresholds, r.prompt);
}
