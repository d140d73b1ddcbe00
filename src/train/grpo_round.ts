// One GRPO generation round: draw prompts (label-stratified or shuffled),
// sample G completions each, score them with the reward functions, and turn
// the rewards into group-relative advantages; plus the per-token log-probs of
// a round's completions under the current weights (for the loss) and the
// round's summary statistics (rewards, sampled-answer confusion, lengths).
import type { RunConfig } from "../config/run_config.js";
import type { Example } from "../data/types.js";
import { catImageGrids, catImageInputs } from "../models/vlm.js";
import { collateCompletions, disposePromptBatch, type PromptBatch } from "../policy/collate.js";
import { disposeEncoded, type EncodedPrompt } from "../policy/encoder.js";
import type { Policy } from "../policy/policy.js";
import type { RolloutBackend, RolloutCompletion } from "../policy/rollout.js";
import { computeRewards, makeRewardContext } from "../rewards/registry.js";
import type { RewardFunction } from "../rewards/types.js";
import { DataParallel, type Generator, noGrad, type Tensor, tensor, tidy } from "../torch/index.js";
import { DataCursor } from "./data_order.js";
import { advantagesAcrossRanks, collatePromptsOrEmpty, type RoundSummary, rolloutPerPrompt } from "./grpo_dp.js";
import { entropyFromLogits, selectiveLogProbs } from "./grpo_math.js";

/** One generation round: prompts, their completions, rewards and advantages. */
export interface Round {
  examples: Example[];
  /** The prompts (owning their image handles) and their left-padded batch. */
  encoded: EncodedPrompt[];
  batch: PromptBatch;
  completions: { promptIndex: number; tokenIds: number[]; text: string; finishReason: string }[];
  rewards: Float64Array;
  perFunction: Record<string, Float64Array>;
  advantages: Float64Array;
  /** Per group: all rewards equal (no learning signal). */
  zeroVariance: boolean[];
  parsedOffensive: boolean[];
  parseable: boolean[];
}

/** Draws prompt examples: label-stratified (offensive and safe alternate) or plain shuffled. */
export class PromptSampler {
  private readonly all: DataCursor;
  private readonly pos: DataCursor | null;
  private readonly neg: DataCursor | null;
  private turn = 0;
  constructor(
    private readonly train: Example[],
    private readonly seed: number,
    private readonly stratify: boolean,
    state?: Record<string, number>,
  ) {
    this.offensive = train.map((e, i) => (e.labels.length ? i : -1)).filter((i) => i >= 0);
    this.safe = train.map((e, i) => (e.labels.length ? -1 : i)).filter((i) => i >= 0);
    const useStrat = stratify && this.offensive.length > 0 && this.safe.length > 0;
    this.all = new DataCursor(train.length, seed, state?.allEpoch ?? 0, state?.allIndex ?? 0);
    this.pos = useStrat ? new DataCursor(this.offensive.length, seed + 1, state?.posEpoch ?? 0, state?.posIndex ?? 0) : null;
    this.neg = useStrat ? new DataCursor(this.safe.length, seed + 2, state?.negEpoch ?? 0, state?.negIndex ?? 0) : null;
    this.turn = state?.turn ?? 0;
  }
  private readonly offensive: number[];
  private readonly safe: number[];
  take(n: number): Example[] {
    if (!this.pos || !this.neg) return this.all.take(n).map((i) => this.train[i]);
    const out: Example[] = [];
    for (let k = 0; k < n; k++) {
      const fromPos = this.turn++ % 2 === 0;
      out.push(fromPos ? this.train[this.offensive[this.pos.take(1)[0]]] : this.train[this.safe[this.neg.take(1)[0]]]);
    }
    return out;
  }
  state(): Record<string, number> {
    return {
      allEpoch: this.all.epoch,
      allIndex: this.all.index,
      posEpoch: this.pos?.epoch ?? 0,
      posIndex: this.pos?.index ?? 0,
      negEpoch: this.neg?.epoch ?? 0,
      negIndex: this.neg?.index ?? 0,
      turn: this.turn,
    };
  }
}

/**
 * Samples and scores the groups of `examples` (this rank's prompts; possibly
 * none). `streamSeeds`: one seed per prompt ("prompt" sampling streams), or
 * null to sample every prompt in one batch from `sampler`. The advantages are
 * computed over every rank's rewards (a collective: every rank calls this).
 */
export async function generateRound(
  policy: Policy,
  rollouts: RolloutBackend,
  examples: Example[],
  cfg: RunConfig,
  fns: RewardFunction[],
  sampler: Generator,
  dp: DataParallel = DataParallel.single(),
  streamSeeds: number[] | null = null,
): Promise<Round> {
  const g = cfg.grpo;
  const encoded = await Promise.all(examples.map((e) => policy.encoder.encodePrompt(e)));
  const batch = collatePromptsOrEmpty(encoded, policy.padTokenId);
  let completions: RolloutCompletion[] = [];
  try {
    const req = { numGenerations: g.num_generations, maxNewTokens: g.max_completion_length, temperature: g.temperature, topP: g.top_p, topK: g.top_k, groupSharing: g.group_sharing };
    if (streamSeeds) completions = await rolloutPerPrompt(rollouts, encoded, policy.padTokenId, streamSeeds, req);
    else if (examples.length) completions = await rollouts.rollout({ ...req, batch, generator: sampler });
  } catch (e) {
    disposePromptBatch(batch);
    disposeEncoded(encoded);
    throw e;
  }
  const labels = completions.map((c) => examples[c.promptIndex].labels);
  const ctx = makeRewardContext(
    completions.map((c) => c.text),
    labels,
    policy.prompt.categories,
  );
  const totals = completions.length ? await computeRewards(fns, ctx) : { total: new Float64Array(0), perFunction: Object.fromEntries(fns.map((f) => [f.name, new Float64Array(0)])) };
  const adv = advantagesAcrossRanks(dp, totals.total, g.num_generations, g.scale_rewards);
  return {
    examples,
    encoded,
    batch,
    completions,
    rewards: totals.total,
    perFunction: totals.perFunction,
    advantages: adv.advantages,
    zeroVariance: adv.zeroVariance,
    parsedOffensive: ctx.parsed.map((p) => p.kind === "offensive"),
    parseable: ctx.parsed.map((p) => p.kind !== "unparseable"),
  };
}

export function disposeRound(r: Round): void {
  disposePromptBatch(r.batch);
  disposeEncoded(r.encoded);
}

/** Keeps the groups `groups` of a round: a sub-round whose prompts move over (the rest are freed with `r`). */
export function subRound(r: Round, groups: number[], G: number, padId: number): Round {
  const rows = groups.flatMap((gi) => Array.from({ length: G }, (_, k) => gi * G + k));
  const encoded = groups.map((gi) => r.encoded[gi]);
  // The kept prompts' image handles now belong to the sub-round; the dropped ones stay with r.
  r.encoded = r.encoded.filter((_, i) => !groups.includes(i));
  return {
    examples: groups.map((gi) => r.examples[gi]),
    encoded,
    batch: collatePromptsOrEmpty(encoded, padId),
    completions: rows.map((i, j) => ({ ...r.completions[i], promptIndex: Math.floor(j / G) })),
    rewards: Float64Array.from(rows, (i) => r.rewards[i]),
    perFunction: Object.fromEntries(Object.entries(r.perFunction).map(([k, v]) => [k, Float64Array.from(rows, (i) => v[i])])),
    advantages: Float64Array.from(rows, (i) => r.advantages[i]),
    zeroVariance: groups.map((gi) => r.zeroVariance[gi]),
    parsedOffensive: rows.map((i) => r.parsedOffensive[i]),
    parseable: rows.map((i) => r.parseable[i]),
  };
}

/** Concatenates rounds (their prompts are re-collated into one left-padded batch). */
export function mergeRounds(rounds: Round[], padId: number): Round {
  if (rounds.length === 1) return rounds[0];
  const encoded = rounds.flatMap((r) => r.encoded);
  let offset = 0;
  const completions = rounds.flatMap((r) => {
    const out = r.completions.map((c) => ({ ...c, promptIndex: c.promptIndex + offset }));
    offset += r.examples.length;
    return out;
  });
  const catF = (xs: Float64Array[]) => Float64Array.from(xs.flatMap((x) => Array.from(x)));
  const names = Object.keys(rounds[0].perFunction);
  const merged: Round = {
    examples: rounds.flatMap((r) => r.examples),
    encoded,
    batch: collatePromptsOrEmpty(encoded, padId),
    completions,
    rewards: catF(rounds.map((r) => r.rewards)),
    perFunction: Object.fromEntries(names.map((n) => [n, catF(rounds.map((r) => r.perFunction[n]))])),
    advantages: catF(rounds.map((r) => r.advantages)),
    zeroVariance: rounds.flatMap((r) => r.zeroVariance),
    parsedOffensive: rounds.flatMap((r) => r.parsedOffensive),
    parseable: rounds.flatMap((r) => r.parseable),
  };
  // The prompts moved into `merged`; only the old batches are freed.
  for (const r of rounds) disposePromptBatch(r.batch);
  return merged;
}

/**
 * Per-token log-probs of the completions under the current weights [R, C]
 * (logits / temperature, as TRL), for the rows of one group. Image features
 * are computed once per prompt and repeated for its completions.
 */
export function completionLogProbs(policy: Policy, round: Round, rows: number[], temperature: number, withEntropy: boolean): { logProbs: Tensor; mask: Tensor; entropy: number | null } {
  return tidy(() => {
    const comps = rows.map((i) => round.completions[i]);
    const c = collateCompletions(round.batch, comps, policy.padTokenId);
    // Vision features once per prompt, then its image-token rows repeated for each of its completions.
    const usedPrompts = [...new Set(comps.map((x) => x.promptIndex))];
    const images = catImageInputs(usedPrompts.map((p) => round.batch.images[p]));
    let imageFeatures: Tensor | undefined;
    let imageGridThw: Tensor | undefined;
    if (images) {
      const feats = policy.model.encodeImageTokens(images); // (sum of image tokens, hidden)
      const start = new Map<number, number>();
      let f = 0;
      for (const p of usedPrompts) {
        start.set(p, f);
        f += round.batch.imageTokens[p];
      }
      const perRow = comps.flatMap((x) => Array.from({ length: round.batch.imageTokens[x.promptIndex] }, (_, k) => start.get(x.promptIndex)! + k));
      imageFeatures = feats.indexSelect(0, tensor(perRow, { dtype: "int64", device: feats.device }));
      imageGridThw = catImageGrids(comps.map((x) => round.batch.images[x.promptIndex]));
    }
    const C = c.completionLength;
    const logits = policy.model.forward({ inputIds: c.inputIds, attentionMask: c.attentionMask, imageFeatures, imageGridThw, logitsToKeep: C + 1 }).logits;
    const scaled = logits.narrow(1, 0, C).div(temperature);
    const logProbs = selectiveLogProbs(scaled, c.completionIds);
    let entropy: number | null = null;
    if (withEntropy) {
      entropy = noGrad(() => {
        const e = entropyFromLogits(scaled.detach());
        const m = c.completionMask.float();
        return (e.mul(m).sum().item() as number) / Math.max(1, m.sum().item() as number);
      });
    }
    return { logProbs, mask: c.completionMask, entropy };
  });
}

function meanStd(xs: ArrayLike<number>): [number, number] {
  const v = Array.from(xs).filter((x) => !Number.isNaN(x));
  if (!v.length) return [NaN, NaN];
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  return [mean, sd];
}

/** Reward and advantage means and spreads of a round summary (every rank's completions in a data-parallel run). */
export function rewardStats(r: RoundSummary): Record<string, number> {
  const out: Record<string, number> = {};
  const [tm, ts] = meanStd(r.rewards);
  out["reward/total_mean"] = tm;
  out["reward/total_std"] = ts;
  for (const [name, v] of Object.entries(r.perFunction)) {
    const [m, sd] = meanStd(v);
    out[`reward/${name}_mean`] = m;
    out[`reward/${name}_std`] = sd;
  }
  const [am, asd] = meanStd(r.advantages);
  out["advantage/mean"] = am;
  out["advantage/std"] = asd;
  out["advantage/abs_max"] = Math.max(...Array.from(r.advantages, Math.abs));
  return out;
}

/** TP/FN/FP/TN of the sampled answers of this batch (unparseable = wrong). */
export function batchConfusion(r: RoundSummary): Record<string, number> {
  let tp = 0;
  let fn = 0;
  let fp = 0;
  let tn = 0;
  r.offensive.forEach((offensive, i) => {
    const flagged = r.parseable[i] ? r.parsedOffensive[i] : !offensive;
    if (offensive && flagged) tp++;
    else if (offensive) fn++;
    else if (flagged) fp++;
    else tn++;
  });
  const unparseable = r.parseable.filter((p) => !p).length / Math.max(1, r.parseable.length);
  return {
    "batch/tp": tp,
    "batch/fn": fn,
    "batch/fp": fp,
    "batch/tn": tn,
    "batch/recall": tp + fn ? tp / (tp + fn) : NaN,
    "batch/fpr": fp + tn ? fp / (fp + tn) : NaN,
    "batch/unparseable_rate": unparseable,
  };
}

export function lengthStats(lengths: number[], truncated: boolean[]): Record<string, number> {
  const [m] = meanStd(lengths);
  return {
    "completion/length_mean": m,
    "completion/length_max": Math.max(...lengths),
    "completion/truncated_fraction": truncated.filter(Boolean).length / Math.max(1, truncated.length),
  };
}
