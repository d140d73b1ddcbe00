// GRPO across data-parallel ranks, with the statistics that cross ranks
// computed as TRL's GRPOTrainer does with several processes (TRL 1.13,
// trl/trainer/grpo_trainer.py: `_calculate_rewards` gathers the rewards of
// every process; `_generate_and_score_completions` computes the group means
// and the std ("group": per group, "batch": over the whole gathered batch)
// on the gathered rewards, then keeps its own slice of the advantages;
// `num_items_in_batch` is the loss-mask sum gathered over all processes;
// metrics are means over the gathered batch). Differences, by design:
//
//  - each prompt's G completions stay on one rank (TRL may spread a group
//    over processes): prompts, not completions, are sharded, contiguously in
//    the order the prompt sampler drew them (every rank draws the same list);
//  - gradients are summed, not averaged: every loss is normalized by GLOBAL
//    counts (the number of loss groups for grpo/bnpo/dr_grpo, the token count
//    for dapo), so the sum over ranks is the one-process gradient even when
//    ranks hold different numbers of groups. (TRL divides dapo's loss by
//    num_items_in_batch / num_processes and averages: the same value when
//    every process holds the same number of completions.)
//  - "prompt" sampling streams (grpo.sampling_streams) seed each group's
//    sampling from (seed, step, attempt, prompt position), so the completions
//    do not depend on which rank samples them.
import { hash32 } from "../data/rng.js";
import type { Example } from "../data/types.js";
import { collatePrompts, type PromptBatch } from "../policy/collate.js";
import type { EncodedPrompt } from "../policy/encoder.js";
import type { RolloutBackend, RolloutCompletion, RolloutRequest } from "../policy/rollout.js";
import { type DataParallel, Generator, shardRange, tensor, tidy } from "../torch/index.js";
import { groupAdvantages, type ScaleRewards } from "./grpo_math.js";

// ---- prompts ---------------------------------------------------------------------

/** This rank's part of prompts drawn identically on every rank, with each one's position in the draw. */
export function shardPrompts(dp: DataParallel, drawn: readonly Example[]): { examples: Example[]; positions: number[] } {
  const [a, b] = shardRange(drawn.length, dp.worldSize, dp.rank);
  return { examples: drawn.slice(a, b), positions: Array.from({ length: b - a }, (_, k) => a + k) };
}

/**
 * Zero-variance resampling across ranks: every rank draws the replacements
 * of ALL ranks' dropped groups (keeping the prompt sampler in step), the
 * j-th dropped group overall gets the j-th new prompt, and each rank keeps
 * the ones that replace its own. In one process: take(dropped).
 */
export function drawReplacements(dp: DataParallel, take: (n: number) => Example[], droppedHere: number): { examples: Example[]; positions: number[] } {
  const counts = dp.enabled ? dp.allGatherJson(droppedHere) : [droppedHere];
  const total = counts.reduce((s, n) => s + n, 0);
  const drawn = take(total);
  const start = counts.slice(0, dp.rank).reduce((s, n) => s + n, 0);
  return { examples: drawn.slice(start, start + droppedHere), positions: Array.from({ length: droppedHere }, (_, k) => start + k) };
}

/** Whether any rank has a zero-variance group (the resampling loop must run in step on every rank). */
export function anyZeroVariance(dp: DataParallel, zeroVariance: readonly boolean[]): boolean {
  const mine = zeroVariance.some(Boolean);
  return dp.enabled ? dp.anyTrue(mine) : mine;
}

/** collatePrompts, or an empty batch for a rank that holds no prompt this round. */
export function collatePromptsOrEmpty(prompts: readonly EncodedPrompt[], padId: number): PromptBatch {
  if (prompts.length) return collatePrompts(prompts, padId);
  return tidy(() => ({
    inputIds: tensor([], { dtype: "int64" }).reshape([0, 0]),
    attentionMask: tensor([], { dtype: "int64" }).reshape([0, 0]),
    images: [],
    imageTokens: [],
    promptLengths: [],
  }));
}

// ---- rollouts ----------------------------------------------------------------------

/** The seed of one group's sampling stream ("prompt" streams). */
export function promptStreamSeed(seed: number, step: number, attempt: number, position: number): number {
  return hash32("grpo-rollout", seed, step, attempt, position) % 2 ** 31;
}

/**
 * Samples each prompt's group on its own, from a generator seeded by its
 * stream seed: the completions of a prompt are then the same whichever rank
 * (and whichever batch) samples it. Completions come back prompt-major, as
 * from one batched rollout.
 */
export async function rolloutPerPrompt(
  rollouts: RolloutBackend,
  encoded: readonly EncodedPrompt[],
  padId: number,
  seeds: readonly number[],
  req: Omit<RolloutRequest, "batch" | "generator">,
): Promise<RolloutCompletion[]> {
  const out: RolloutCompletion[] = [];
  for (const [i, enc] of encoded.entries()) {
    const batch = collatePrompts([enc], padId);
    try {
      const comps = await rollouts.rollout({ ...req, batch, generator: new Generator(seeds[i]) });
      for (const c of comps) out.push({ ...c, promptIndex: i });
    } finally {
      batch.inputIds.dispose();
      batch.attentionMask.dispose();
    }
  }
  return out;
}

// ---- advantages over the global batch ----------------------------------------------

/** Every rank's Float64Array, in rank order (NaN-safe: sent as raw bytes). */
export function allGatherFloat64(dp: DataParallel, values: Float64Array): Float64Array[] {
  if (!dp.enabled) return [values];
  return dp.allGatherBytes(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).map((b) => new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
}

export interface GlobalScores {
  /** This rank's advantages (one per local completion). */
  advantages: Float64Array;
  /** Per local group: all its rewards equal. */
  zeroVariance: boolean[];
}

/**
 * Group-relative advantages on the rewards of all ranks (laid out rank
 * after rank, groups of G), sliced back to this rank: "batch" scaling then
 * uses the std of the whole global batch, as TRL does. In one process:
 * groupAdvantages on the local rewards.
 */
export function advantagesAcrossRanks(dp: DataParallel, rewards: Float64Array, G: number, scale: ScaleRewards): GlobalScores {
  const parts = allGatherFloat64(dp, rewards);
  const all = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let offset = 0;
  let mine = 0;
  parts.forEach((p, r) => {
    if (r === dp.rank) mine = offset;
    all.set(p, offset);
    offset += p.length;
  });
  if (all.length === 0) return { advantages: new Float64Array(0), zeroVariance: [] };
  const adv = groupAdvantages(all, G, scale);
  const g0 = mine / G;
  const groups = rewards.length / G;
  const zv = Array.from(adv.zeroVarianceMask.subarray(g0, g0 + groups), (v) => v === 1);
  return { advantages: adv.advantages.slice(mine, mine + rewards.length), zeroVariance: zv };
}

/** Share of zero-variance groups over every rank's groups (TRL's frac_reward_zero_std, per group). */
export function zeroVarianceFraction(dp: DataParallel, zeroVariance: readonly boolean[]): number {
  const [zv, n] = dp.allReduceNumbers([zeroVariance.filter(Boolean).length, zeroVariance.length]);
  return zv / n;
}

// ---- metrics over the global batch ---------------------------------------------------

/** Per-completion figures that step metrics are computed from. */
export interface RoundSummary {
  rewards: Float64Array;
  perFunction: Record<string, Float64Array>;
  advantages: Float64Array;
  /** The prompt's image is offensive (has labels). */
  offensive: boolean[];
  parseable: boolean[];
  parsedOffensive: boolean[];
  lengths: number[];
  truncated: boolean[];
}

/** What summarizeRound needs of a round (grpo.ts's Round has it). */
export interface RoundLike {
  examples: readonly { labels: readonly string[] }[];
  completions: readonly { promptIndex: number; tokenIds: readonly number[]; finishReason: string }[];
  rewards: Float64Array;
  perFunction: Record<string, Float64Array>;
  advantages: Float64Array;
  parseable: readonly boolean[];
  parsedOffensive: readonly boolean[];
}

export function summarizeRound(r: RoundLike): RoundSummary {
  return {
    rewards: r.rewards,
    perFunction: r.perFunction,
    advantages: r.advantages,
    offensive: r.completions.map((c) => r.examples[c.promptIndex].labels.length > 0),
    parseable: [...r.parseable],
    parsedOffensive: [...r.parsedOffensive],
    lengths: r.completions.map((c) => c.tokenIds.length),
    truncated: r.completions.map((c) => c.finishReason === "length"),
  };
}

/** The summaries of every rank, concatenated in rank order (one gather); the local one in one process. */
export function gatherSummary(dp: DataParallel, s: RoundSummary): RoundSummary {
  if (!dp.enabled) return s;
  const names = Object.keys(s.perFunction).sort();
  const n = s.rewards.length;
  const cols = 7 + names.length;
  const packed = new Float64Array(n * cols);
  for (let i = 0; i < n; i++) {
    const row = [s.rewards[i], s.advantages[i], +s.offensive[i], +s.parseable[i], +s.parsedOffensive[i], s.lengths[i], +s.truncated[i], ...names.map((k) => s.perFunction[k][i])];
    packed.set(row, i * cols);
  }
  const rows = allGatherFloat64(dp, packed).flatMap((p) => Array.from({ length: p.length / cols }, (_, i) => p.subarray(i * cols, (i + 1) * cols)));
  const col = (j: number) => Float64Array.from(rows, (r) => r[j]);
  return {
    rewards: col(0),
    advantages: col(1),
    offensive: rows.map((r) => r[2] === 1),
    parseable: rows.map((r) => r[3] === 1),
    parsedOffensive: rows.map((r) => r[4] === 1),
    lengths: rows.map((r) => r[5]),
    truncated: rows.map((r) => r[6] === 1),
    perFunction: Object.fromEntries(names.map((k, j) => [k, col(7 + j)])),
  };
}
