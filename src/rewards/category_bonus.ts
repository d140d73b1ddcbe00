// A bonus for naming the right categories on offensive images.
//
// Recall alone (recall_reward.ts) pays the same for "weapons" and
// "nudity, weapons" on an image labelled weapons. This bonus pays for the
// categories themselves, on offensive images only:
//
//   mode "jaccard" (default): |predicted ∩ labels| / |predicted ∪ labels|, in [0, 1]
//   mode "exact":             1 when predicted = labels as sets, else 0
//
// "predicted" is the parsed category set; a safe or unparseable answer names
// none and scores 0. On a safe image the bonus is null ("not applicable"):
// false alarms are the recall reward's business. Names compare with
// normalizeCategory (case and whitespace insensitive). With the default
// weight 0.5 a perfect answer earns +0.5 on top of the recall reward.
import { normalizeCategory } from "../data/prompt.js";
import type { ParsedAnswer } from "./answer_parser.js";
import { checkOptionKeys, type RewardFunction } from "./types.js";

export interface CategoryBonusOptions {
  /** "jaccard" (partial credit) or "exact" (all or nothing). Default "jaccard". */
  mode?: "jaccard" | "exact";
}

/** Default weight of the bonus in the total reward. */
export const CATEGORY_BONUS_WEIGHT = 0.5;

/**
 * The unweighted bonus of one completion; null on a safe image.
 *
 *   categoryScore(["nudity", "weapons"], { kind: "offensive", categories: ["weapons"], hasThink: false }, "jaccard") === 0.5
 */
export function categoryScore(labels: readonly string[], parsed: ParsedAnswer, mode: "jaccard" | "exact"): number | null {
  if (labels.length === 0) return null;
  const truth = new Set(labels.map(normalizeCategory));
  const pred = new Set(parsed.kind === "offensive" ? parsed.categories.map(normalizeCategory) : []);
  let inter = 0;
  for (const p of pred) if (truth.has(p)) inter++;
  const union = truth.size + pred.size - inter;
  if (mode === "exact") return inter === truth.size && inter === pred.size ? 1 : 0;
  return inter / union;
}

/** The bonus as a RewardFunction named "category_bonus". */
export function categoryBonus(options: CategoryBonusOptions = {}, weight = CATEGORY_BONUS_WEIGHT): RewardFunction {
  const where = "reward 'category_bonus'";
  checkOptionKeys(where, options, ["mode"]);
  const mode = options.mode ?? "jaccard";
  if (mode !== "jaccard" && mode !== "exact") throw new Error(`${where}: option 'mode' must be "jaccard" or "exact", got ${JSON.stringify(mode)}`);
  return {
    name: "category_bonus",
    weight,
    fn: (ctx) => ctx.parsed.map((p, i) => categoryScore(ctx.labels[i], p, mode)),
  };
}
