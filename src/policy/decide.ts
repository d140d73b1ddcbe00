// The one decision function: a classification (answer + scores, from
// classify.ts) and a decision rule in, a decision out. predict, eval and the
// server all call it, so the same image with the same model and rule gets
// the same decision everywhere.
//
// Rules:
//   answer     the model's greedy answer decides: "<answer>weapons</answer>"
//              flags weapons, "<answer>safe</answer>" passes. An unparseable
//              answer is flagged (routed to review) under `unparseable:
//              "flag"` (the default) and passed under "pass".
//   threshold  the scores decide: flagged when the (calibrated) offensive
//              score >= the overall threshold, so the recall the threshold was
//              chosen for is the recall of the flags. A flagged image is named
//              with the categories whose scores reach their own thresholds;
//              when none does, with the answer's categories (possibly none:
//              "offensive, no category"). Category thresholds never flag an
//              image by themselves: a union of per-category flags would reach
//              more recall than asked for at a much higher false-positive rate.
// A classification whose image could not be read gets `error` and no decision.
import type { Classification } from "./classify.js";
import type { ModelCard } from "./model_card.js";
import { type Calibration, calibrate, type ThresholdSet, thresholdSetFor } from "./thresholds.js";

export type DecisionRule =
  | { kind: "answer"; unparseable?: "flag" | "pass" }
  | {
      kind: "threshold";
      /** Flag when the calibrated offensive score >= overall. */
      overall: number;
      /** Category thresholds on the category scores, naming a flagged image's categories (categories left out have none). */
      perCategory: Record<string, number>;
      /** Applied to the raw offensive score before comparing; null = the raw score. */
      calibration: Calibration | null;
      /** Where the thresholds came from, for the output (e.g. "saved, target recall 0.95" or "--threshold 0.4"). */
      source: string;
    };

export interface Decision {
  id: string;
  /** null when the image could not be read. */
  flagged: boolean | null;
  /** Categories flagged (empty when passed, or flagged without a category). */
  categories: string[];
  /** The offensive score the rule compared (calibrated when the rule calibrates); null on error. */
  score: number | null;
  /** The overall threshold compared with (null under the answer rule). */
  threshold: number | null;
  /** "answer" or the threshold rule's source. */
  source: string;
  /** What the greedy answer said: safe, offensive or unparseable (or error). */
  answerKind: "safe" | "offensive" | "unparseable" | "error";
  error?: string;
}

/** Decides one classification under a rule (see the file header). */
export function decide(c: Classification, rule: DecisionRule): Decision {
  if (c.error !== undefined) {
    return { id: c.id, flagged: null, categories: [], score: null, threshold: null, source: rule.kind === "answer" ? "answer" : rule.source, answerKind: "error", error: c.error };
  }
  const answerKind = c.parsed.kind;
  const answerCategories = c.parsed.kind === "offensive" ? c.parsed.categories : [];
  if (rule.kind === "answer") {
    const flagged = answerKind === "offensive" || (answerKind === "unparseable" && (rule.unparseable ?? "flag") === "flag");
    return { id: c.id, flagged, categories: answerCategories, score: c.score, threshold: null, source: "answer", answerKind };
  }
  const score = calibrate(c.score, rule.calibration);
  const flagged = score >= rule.overall;
  // Keep the policy's category order.
  const named = Object.keys(c.categoryScores).filter((k) => rule.perCategory[k] !== undefined && c.categoryScores[k] >= rule.perCategory[k]);
  const categories = !flagged ? [] : named.length > 0 ? named : answerCategories;
  return { id: c.id, flagged, categories, score, threshold: rule.overall, source: rule.source, answerKind };
}

/** The rule of a saved threshold set. */
export function ruleFromSet(set: ThresholdSet, calibration: Calibration | null, source: string): DecisionRule {
  const perCategory: Record<string, number> = {};
  for (const [k, f] of Object.entries(set.per_category)) if (f !== null) perCategory[k] = f.threshold;
  return { kind: "threshold", overall: set.overall.threshold, perCategory, calibration, source };
}

/** How a caller asks for a rule (predict's flags; the server's options). */
export interface RuleRequest {
  /** An explicit overall threshold on the (calibrated) score; the card's per-category thresholds still apply. */
  threshold?: number;
  /** Use the card's saved set for this target recall. */
  targetRecall?: number;
  /** Decide from the answer even when thresholds are saved. */
  useAnswer?: boolean;
}

/**
 * The rule a model folder's card gives for a request: `useAnswer` -> the
 * answer rule; `threshold` -> that overall threshold (with the card's
 * calibration and category thresholds when saved); `targetRecall` -> the
 * saved set for it (an error naming the card when none is saved); nothing
 * -> the saved default set if the card has thresholds, else the answer rule.
 */
export function ruleFromCard(card: ModelCard | null, req: RuleRequest, where: string): DecisionRule {
  const record = card?.thresholds ?? null;
  if (req.useAnswer) return { kind: "answer" };
  if (req.threshold !== undefined) {
    if (!(req.threshold >= 0 && req.threshold <= 1)) throw new Error(`threshold must be in [0, 1], got ${req.threshold}`);
    const set = record ? thresholdSetFor(record, undefined, where) : null;
    const base = set ? ruleFromSet(set, record!.calibration, "") : null;
    return {
      kind: "threshold",
      overall: req.threshold,
      perCategory: base && base.kind === "threshold" ? base.perCategory : {},
      calibration: record?.calibration ?? null,
      source: `threshold ${req.threshold}${record?.calibration ? " (calibrated score)" : ""}`,
    };
  }
  if (req.targetRecall !== undefined) {
    if (!record) throw new Error(`${where}: no thresholds saved; run vlm-grpo eval --model <this folder> --save-thresholds first (or pass --threshold X)`);
    const set = thresholdSetFor(record, req.targetRecall, where);
    return ruleFromSet(set, record.calibration, `saved thresholds for recall ${set.target_recall} (chosen on ${record.split}, ${record.chosen_at.slice(0, 10)})`);
  }
  if (record) {
    const set = thresholdSetFor(record, undefined, where);
    return ruleFromSet(set, record.calibration, `saved thresholds for recall ${set.target_recall} (chosen on ${record.split}, ${record.chosen_at.slice(0, 10)})`);
  }
  return { kind: "answer" };
}
