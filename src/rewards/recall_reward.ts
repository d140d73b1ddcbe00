// The recall-first reward: an asymmetric confusion-matrix score per completion.
//
// An image is offensive when its labels are non-empty; a completion predicts
// offensive when it parses to { kind: "offensive" } (any category). Which
// categories were named does not matter here (see category_bonus.ts).
//
//                      predicted offensive    predicted safe
//   offensive image    truePositive  (+1)     falseNegative (-1)
//   safe image         falsePositive (-0.2)   trueNegative  (+0.1)
//
// A missed offensive image costs five times a false alarm, so the policy
// learns to flag when in doubt. An unparseable completion scores, by default,
// as the wrong answer: a miss on an offensive image, a false alarm on a safe
// one (`unparseableAs: "wrong"`), or a fixed value (`unparseableAs: -1`).
import type { ParsedAnswer } from "./answer_parser.js";
import { checkOptionKeys, numberOption, type RewardFunction } from "./types.js";

export interface RecallRewardOptions {
  /** Offensive image flagged offensive. Default 1. */
  truePositive?: number;
  /** Offensive image called safe (a miss). Default -1. */
  falseNegative?: number;
  /** Safe image flagged offensive (a false alarm). Default -0.2. */
  falsePositive?: number;
  /** Safe image called safe. Default 0.1. */
  trueNegative?: number;
  /** Score of an unparseable completion: "wrong" (falseNegative or falsePositive) or a fixed number. Default "wrong". */
  unparseableAs?: "wrong" | number;
}

export type ResolvedRecallOptions = Required<RecallRewardOptions>;

const KEYS = ["truePositive", "falseNegative", "falsePositive", "trueNegative", "unparseableAs"] as const;

/** Fills defaults and validates; errors name the option. */
export function resolveRecallOptions(options: RecallRewardOptions = {}, where = "reward 'recall'"): ResolvedRecallOptions {
  checkOptionKeys(where, options, KEYS);
  const o = options as Record<string, unknown>;
  const u = o.unparseableAs ?? "wrong";
  if (u !== "wrong" && (typeof u !== "number" || !Number.isFinite(u))) {
    throw new Error(`${where}: option 'unparseableAs' must be "wrong" or a finite number, got ${JSON.stringify(u)}`);
  }
  return {
    truePositive: numberOption(where, o, "truePositive", 1),
    falseNegative: numberOption(where, o, "falseNegative", -1),
    falsePositive: numberOption(where, o, "falsePositive", -0.2),
    trueNegative: numberOption(where, o, "trueNegative", 0.1),
    unparseableAs: u as "wrong" | number,
  };
}

/**
 * Score of one completion.
 *
 *   recallScore(["weapons"], { kind: "safe", hasThink: false }, resolveRecallOptions()) === -1
 */
export function recallScore(labels: readonly string[], parsed: ParsedAnswer, o: ResolvedRecallOptions): number {
  const offensive = labels.length > 0;
  if (parsed.kind === "unparseable") {
    if (o.unparseableAs !== "wrong") return o.unparseableAs;
    return offensive ? o.falseNegative : o.falsePositive;
  }
  const flagged = parsed.kind === "offensive";
  if (offensive) return flagged ? o.truePositive : o.falseNegative;
  return flagged ? o.falsePositive : o.trueNegative;
}

/**
 * The recall reward as a RewardFunction named "recall".
 *
 *   recallReward().fn({ completions: ["<answer>safe</answer>"], labels: [["weapons"]], parsed: [...], categories })
 *     -> [-1]
 */
export function recallReward(options: RecallRewardOptions = {}, weight = 1): RewardFunction {
  const o = resolveRecallOptions(options);
  return {
    name: "recall",
    weight,
    fn: (ctx) => ctx.parsed.map((p, i) => recallScore(ctx.labels[i], p, o)),
  };
}
