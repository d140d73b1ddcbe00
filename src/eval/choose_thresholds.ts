// Choosing the thresholds a model decides with, on one split (the
// validation split by default), as a record to save in its model card
// (policy/thresholds.ts).
//
// For each target recall r:
//   overall       the highest threshold on the (calibrated) offensive score
//                 whose recall over offensive images is >= r (curves.ts'
//                 thresholdForRecall, so tied scores move together);
//   per category  the same on that category's score (policy/answer_probe.ts),
//                 one-vs-rest: positives are the images labelled with it;
//                 null when the split has none. It names the categories of a
//                 flagged image (policy/decide.ts), it does not flag;
//   rule          what the whole decision rule (policy/decide.ts) gives on
//                 the split, recomputed through decide(): what predict will
//                 do with the set.
// Each figure carries Wilson 95% intervals and `few_images` when it rests on
// fewer than `minSupport` positives or negatives.
import type { Classification } from "../policy/classify.js";
import { decide, ruleFromSet } from "../policy/decide.js";
import { type Calibration, calibrate, type ThresholdFigures, type ThresholdRecord, type ThresholdSet } from "../policy/thresholds.js";
import { computeCurves, thresholdForRecall } from "./curves.js";
import { ratesWithIntervals } from "./intervals.js";
import type { Confusion } from "./metrics.js";

/** A classified image with its true labels (empty = safe). */
export interface LabelledClassification {
  classification: Classification;
  labels: readonly string[];
}

export interface ChooseThresholdsOptions {
  categories: readonly string[];
  /** Target recalls to choose a set for; `defaultTargetRecall` is added when missing. */
  targetRecalls: readonly number[];
  defaultTargetRecall: number;
  /** The fitted calibration (null: thresholds on the raw score), with its ECE on this split. */
  calibration: (Calibration & { ece_before: number; ece_after: number }) | null;
  minSupport: number;
  /** Recorded as where the thresholds were chosen. */
  split: string;
  data: string;
  /** Default new Date(). */
  now?: Date;
}

const ratio = (n: number, d: number) => (d === 0 ? null : n / d);

/** The figures of flagging at `threshold` (score >= threshold). */
export function figuresAt(scores: readonly number[], truth: readonly boolean[], threshold: number, minSupport: number): ThresholdFigures {
  const c: Confusion = { tp: 0, fn: 0, fp: 0, tn: 0 };
  scores.forEach((s, i) => (truth[i] ? (s >= threshold ? c.tp++ : c.fn++) : s >= threshold ? c.fp++ : c.tn++));
  const r = ratesWithIntervals(c, minSupport);
  return { threshold, recall: r.recall, fpr: r.fpr, precision: ratio(c.tp, c.tp + c.fp), few_images: r.few_images };
}

function choose(scores: number[], truth: boolean[], target: number, minSupport: number): ThresholdFigures | null {
  if (!truth.some(Boolean)) return null;
  const pick = thresholdForRecall(computeCurves(scores, truth, { fprTargets: [] }), target);
  return pick ? figuresAt(scores, truth, pick.threshold, minSupport) : null;
}

/**
 * Chooses one threshold set per target recall. Null when the split has no
 * offensive image (no recall to reach); errors name a classification that
 * failed.
 */
export function chooseThresholds(items: readonly LabelledClassification[], opts: ChooseThresholdsOptions): ThresholdRecord | null {
  items.forEach(({ classification: c }) => {
    if (c.error !== undefined || !Number.isFinite(c.score)) throw new Error(`chooseThresholds: image ${c.id} has no score (${c.error ?? "NaN"})`);
  });
  const truth = items.map((x) => x.labels.length > 0);
  if (!truth.some(Boolean)) return null;
  const scores = items.map((x) => calibrate(x.classification.score, opts.calibration));
  const targets = [...new Set([opts.defaultTargetRecall, ...opts.targetRecalls])].sort((a, b) => a - b);
  const sets: ThresholdSet[] = targets.map((r) => {
    const overall = choose(scores, truth, r, opts.minSupport)!;
    const per_category: Record<string, ThresholdFigures | null> = {};
    for (const cat of opts.categories) {
      per_category[cat] = choose(
        items.map((x) => x.classification.categoryScores[cat] ?? 0),
        items.map((x) => x.labels.includes(cat)),
        r,
        opts.minSupport,
      );
    }
    const set: ThresholdSet = { target_recall: r, overall, per_category, rule: { recall: overall.recall, fpr: overall.fpr, precision: null, few_images: false } };
    set.rule = ruleFigures(items, set, opts.calibration, opts.minSupport);
    return set;
  });
  return {
    chosen_at: (opts.now ?? new Date()).toISOString(),
    split: opts.split,
    data: opts.data,
    images: items.length,
    positives: truth.filter(Boolean).length,
    min_support: opts.minSupport,
    calibration: opts.calibration,
    default_target_recall: opts.defaultTargetRecall,
    sets,
  };
}

/** Recall / FPR / precision of the whole rule of a set (decide()) on labelled classifications. */
export function ruleFigures(items: readonly LabelledClassification[], set: ThresholdSet, calibration: Calibration | null, minSupport: number): ThresholdSet["rule"] {
  const rule = ruleFromSet(set, calibration, "");
  const c: Confusion = { tp: 0, fn: 0, fp: 0, tn: 0 };
  for (const x of items) {
    const d = decide(x.classification, rule);
    const truth = x.labels.length > 0;
    if (truth) d.flagged ? c.tp++ : c.fn++;
    else d.flagged ? c.fp++ : c.tn++;
  }
  const r = ratesWithIntervals(c, minSupport);
  return { recall: r.recall, fpr: r.fpr, precision: ratio(c.tp, c.tp + c.fp), few_images: r.few_images };
}
