// The format reward: 1 for a completion that follows the answer format
// (parses to safe or offensive, see answer_parser.ts), else 0. With
// `requireThink`, a parseable answer also needs a <think> block to earn 1.
// It keeps a young policy producing answers the recall reward can read; its
// default weight is small so that it never outweighs getting the answer right.
import { checkOptionKeys, type RewardFunction } from "./types.js";

export interface FormatRewardOptions {
  /** Require a <think>...</think> block before the answer. Default false. */
  requireThink?: boolean;
}

/** Default weight of the format reward in the total reward. */
export const FORMAT_REWARD_WEIGHT = 0.1;

/**
 * The format reward as a RewardFunction named "format".
 *
 *   formatReward().fn(ctx) for completions ["<answer>safe</answer>", "maybe?"] -> [1, 0]
 */
export function formatReward(options: FormatRewardOptions = {}, weight = FORMAT_REWARD_WEIGHT): RewardFunction {
  const where = "reward 'format'";
  checkOptionKeys(where, options, ["requireThink"]);
  const requireThink = options.requireThink ?? false;
  if (typeof requireThink !== "boolean") throw new Error(`${where}: option 'requireThink' must be true or false, got ${JSON.stringify(requireThink)}`);
  return {
    name: "format",
    weight,
    fn: (ctx) => ctx.parsed.map((p) => (p.kind === "unparseable" ? 0 : requireThink && !p.hasThink ? 0 : 1)),
  };
}
