// GRPO's math: group-relative advantages, the clipped token-level policy
// loss with an optional k3 KL penalty, and the per-token helpers it needs.
//
// Semantics follow TRL's GRPOTrainer (huggingface/trl at f2cd577, version
// 1.10.0.dev, trl/trainer/grpo_trainer.py `_generate_and_score_completions`
// and `_compute_loss`, trl/trainer/utils.py `nanstd`, `selective_log_softmax`,
// `entropy_from_logits`). Terms implemented:
//
//  - advantages: A_i = r_i - mean(group of i); scale "group" divides by the
//    group's std + 1e-4, "batch" by the whole batch's std + 1e-4, "none" not at
//    all. Std is Bessel-corrected (like torch.std); NaN rewards (unscorable
//    completions) are left out of mean and std and get advantage 0.
//  - ratio: r_t = exp(logp_t - old_t) per token (or one per sequence with
//    importanceSamplingLevel "sequence": exp of the masked mean log-ratio, GSPO);
//    old = logp.detach() unless given, so with one iteration per generation
//    the ratio is 1 and only its gradient matters. With num_iterations > 1
//    the caller passes the log-probs recorded at generation time.
//  - clip: l_t = -min(r_t A, clip(r_t, 1 - epsLow, 1 + epsHigh) A)
//    (optionally r_t capped at `delta` first: TRL's two-sided clipping).
//  - KL: + beta * k3, k3 = exp(ref - logp) - (ref - logp) - 1 per token;
//    with biasCorrectionKl, + beta * k3 * r_t instead (TRL's
//    use_bias_correction_kl, on by default in TRL 1.13's GRPOConfig): the
//    ratio before any `delta` cap, per token or the sequence's at sequence
//    level. r_t is differentiable, so even on-policy (r_t = 1) the KL
//    gradient gains beta * k3 * d logp, the unbiased reverse-KL gradient.
//  - aggregation over completion tokens (mask m):
//      grpo:    mean_i ( sum_t l_it m_it / max(1, sum_t m_it) )
//      bnpo:    sum l m / max(1, sum m)
//      dr_grpo: sum l m / (B * maxCompletionLength)
//      dapo:    sum l m / (max(1, numItemsInBatch) / numProcesses)
//    grpo, bnpo and dr_grpo are then divided by gradientAccumulationSteps, as
//    TRL does; dapo is not, because numItemsInBatch already counts the tokens
//    of every micro-batch of the optimizer step.
import { cat, F, noGrad, stack, Tensor, tensor, tidy } from "../torch/index.js";

// ---- advantages ------------------------------------------------------------

/** How group-centred rewards are scaled (TRL's `scale_rewards`). */
export type ScaleRewards = "group" | "batch" | "none";

/** Added to the std before dividing, as TRL does, so zero-variance groups give 0, not NaN. */
export const ADVANTAGE_STD_EPS = 1e-4;

export interface GroupAdvantages {
  /** Per completion [B]; 0 for NaN (unscorable) rewards and groups without a mean. */
  advantages: Float64Array;
  /** Mean reward of each group [B / G], NaN rewards left out (NaN if the whole group is NaN). */
  groupMean: Float64Array;
  /** Bessel-corrected std of each group [B / G], NaN rewards left out; NaN with fewer than 2 scorable members; 0 when G = 1. */
  groupStd: Float64Array;
  /** 1 where the group's rewards are all equal (std within 1e-8 of 0, torch.isclose's atol): no learning signal. */
  zeroVarianceMask: Uint8Array;
  /** Bessel-corrected std of all (non-NaN) rewards; 0 for a batch of one. */
  batchStd: number;
}

/** Mean and Bessel-corrected std of the non-NaN values of xs[from, to) (TRL's nanmean / nanstd). */
function nanMeanStd(xs: ArrayLike<number>, from: number, to: number): { mean: number; std: number } {
  let n = 0;
  let sum = 0;
  for (let i = from; i < to; i++) {
    if (!Number.isNaN(xs[i])) {
      n++;
      sum += xs[i];
    }
  }
  const mean = n > 0 ? sum / n : NaN;
  let ss = 0;
  for (let i = from; i < to; i++) if (!Number.isNaN(xs[i])) ss += (xs[i] - mean) ** 2;
  return { mean, std: n > 1 ? Math.sqrt(ss / (n - 1)) : NaN };
}

/**
 * Group-relative advantages over rewards laid out as [groups, G] (the G
 * completions of one prompt are consecutive).
 *
 *   groupAdvantages([1, 0, 0, 0], 4, "none").advantages -> [0.75, -0.25, -0.25, -0.25]
 *   groupAdvantages([1, 0, 0, 0], 4, "group").advantages -> [0.75, -0.25, -0.25, -0.25] / (0.5 + 1e-4)
 */
export function groupAdvantages(rewards: Float64Array | readonly number[], groupSize: number, scale: ScaleRewards = "group"): GroupAdvantages {
  const B = rewards.length;
  if (!Number.isInteger(groupSize) || groupSize < 1) throw new Error(`groupAdvantages: groupSize must be a positive integer, got ${groupSize}`);
  if (B === 0 || B % groupSize !== 0) throw new Error(`groupAdvantages: ${B} rewards do not split into groups of ${groupSize}`);
  if (scale !== "group" && scale !== "batch" && scale !== "none") throw new Error(`groupAdvantages: scale must be "group", "batch" or "none", got ${JSON.stringify(scale)}`);
  for (let i = 0; i < B; i++) {
    if (typeof rewards[i] !== "number" || rewards[i] === Infinity || rewards[i] === -Infinity) {
      throw new Error(`groupAdvantages: reward ${i} is ${rewards[i]}; expected a finite number (NaN marks an unscorable completion)`);
    }
  }
  const groups = B / groupSize;
  const groupMean = new Float64Array(groups);
  const groupStd = new Float64Array(groups);
  const zeroVarianceMask = new Uint8Array(groups);
  for (let g = 0; g < groups; g++) {
    const { mean, std } = nanMeanStd(rewards, g * groupSize, (g + 1) * groupSize);
    groupMean[g] = mean;
    groupStd[g] = groupSize > 1 ? std : 0;
    zeroVarianceMask[g] = Math.abs(groupStd[g]) <= 1e-8 ? 1 : 0; // NaN -> 0, as torch.isclose(nan, 0)
  }
  const batchStd = B > 1 ? nanMeanStd(rewards, 0, B).std : 0;
  const advantages = new Float64Array(B);
  for (let i = 0; i < B; i++) {
    const g = Math.floor(i / groupSize);
    let a = rewards[i] - groupMean[g];
    if (scale === "group") a /= groupStd[g] + ADVANTAGE_STD_EPS;
    else if (scale === "batch") a /= batchStd + ADVANTAGE_STD_EPS;
    advantages[i] = Number.isNaN(a) ? 0 : a;
  }
  return { advantages, groupMean, groupStd, zeroVarianceMask, batchStd };
}

// ---- loss ------------------------------------------------------------------

/** How per-token losses are averaged (TRL's `loss_type`). */
export type LossType = "grpo" | "bnpo" | "dr_grpo" | "dapo";

export interface GrpoLossInput {
  /** Current policy's log-probs of the completion tokens [B, T] (differentiable). */
  logProbs: Tensor;
  /** Log-probs when the completions were sampled [B, T]. Default logProbs.detach() (one iteration per generation). */
  oldLogProbs?: Tensor | null;
  /** Reference model's log-probs [B, T]; required when beta != 0. */
  refLogProbs?: Tensor | null;
  /** One advantage per completion [B] (or per token [B, T]). */
  advantages: Tensor | Float64Array | readonly number[];
  /** 1 on completion tokens, 0 on padding (and on masked-out truncated completions) [B, T]; any dtype, nonzero counts as 1. */
  completionMask: Tensor;
  /** Lower clip: ratios below 1 - epsilonLow stop earning for negative advantages. Default 0.2. */
  epsilonLow?: number;
  /** Upper clip: ratios above 1 + epsilonHigh stop earning for positive advantages. Default epsilonLow (DAPO suggests 0.28). */
  epsilonHigh?: number;
  /** Cap on the unclipped ratio (TRL's `delta`, two-sided clipping); null for none. Default null. */
  delta?: number | null;
  /** KL coefficient. Default 0 (no reference model needed). */
  beta?: number;
  /**
   * Multiply the per-token KL by the importance ratio (TRL's
   * use_bias_correction_kl). Default false here, so that the loss is the plain
   * formula of the file header; the run config's grpo.use_bias_correction_kl
   * defaults to true, as TRL 1.13's GRPOConfig does.
   */
  biasCorrectionKl?: boolean;
  /** Token aggregation; see the file header. Default "dapo" (TRL's default). */
  lossType?: LossType;
  /** Ratio per token ("token") or one per sequence ("sequence", GSPO). Default "token". */
  importanceSamplingLevel?: "token" | "sequence";
  /** Required by dr_grpo: the generation length cap, the constant of its normalizer. */
  maxCompletionLength?: number;
  /** dapo's token count: completion tokens of the whole optimizer step over all processes. Default: this batch's mask sum. */
  numItemsInBatch?: number;
  /** Data-parallel processes (dapo divides numItemsInBatch by it; gradient averaging restores the global mean). Default 1. */
  numProcesses?: number;
  /** Micro-batches per optimizer step (grpo, bnpo and dr_grpo divide by it). Default 1. */
  gradientAccumulationSteps?: number;
}

export interface GrpoLossStats {
  /** The loss before division by gradientAccumulationSteps (TRL's policy_loss). */
  policyLoss: number;
  /** Masked mean of the per-token k3 KL (times the ratio under biasCorrectionKl, as TRL logs it); null when refLogProbs is not given. */
  klMean: number | null;
  /** Fraction of completion tokens (of completions, at sequence level) with ratio < 1 - epsilonLow and a negative advantage (no gradient there). */
  clipRatioLow: number;
  /** Fraction of completion tokens with ratio > 1 + epsilonHigh and a positive advantage (no gradient there). */
  clipRatioHigh: number;
  /** clipRatioLow + clipRatioHigh (the two sets are disjoint). */
  clipRatioRegion: number;
  /** Masked mean of the importance ratio (1 when old = logProbs). */
  ratioMean: number;
  /** Number of completion tokens (mask sum). */
  tokens: number;
}

export interface GrpoLossResult {
  /** Scalar loss to call backward on. */
  loss: Tensor;
  stats: GrpoLossStats;
}

interface AggregateArgs {
  /** Per-token loss times the mask [B, T]. */
  masked: Tensor;
  /** Float mask [B, T]. */
  mask: Tensor;
  input: GrpoLossInput;
}

/** Token aggregation by loss type (before gradient-accumulation scaling). */
const AGGREGATE: Record<LossType, (a: AggregateArgs) => Tensor> = {
  grpo: ({ masked, mask }) => masked.sum(-1).div(mask.sum(-1).clamp(1)).mean(),
  bnpo: ({ masked, mask }) => masked.sum().div(mask.sum().clamp(1)),
  dr_grpo: ({ masked, input }) => {
    const L = input.maxCompletionLength;
    if (L === undefined || !Number.isInteger(L) || L < 1) throw new Error(`grpoLoss: lossType "dr_grpo" needs maxCompletionLength, a positive integer; got ${L}`);
    return masked.sum().div(masked.size(0) * L);
  },
  dapo: ({ masked, mask, input }) => {
    const procs = input.numProcesses ?? 1;
    if (!Number.isInteger(procs) || procs < 1) throw new Error(`grpoLoss: numProcesses must be a positive integer, got ${procs}`);
    const n = input.numItemsInBatch;
    if (n === undefined) return masked.sum().div(mask.sum().clamp(1).div(procs));
    if (typeof n !== "number" || !Number.isFinite(n) || n < 0) throw new Error(`grpoLoss: numItemsInBatch must be a non-negative number, got ${n}`);
    return masked.sum().div(Math.max(n, 1) / procs);
  },
};

function checkShape(name: string, t: Tensor, shape: readonly number[]): void {
  const s = t.shape;
  if (s.length !== shape.length || s.some((d, i) => d !== shape[i])) {
    throw new Error(`grpoLoss: ${name} has shape [${s.join(", ")}], expected [${shape.join(", ")}] (the shape of logProbs)`);
  }
}

/**
 * TRL's GRPO objective for one micro-batch (see the file header for the
 * exact terms). Tokens where the mask is 0 contribute nothing and get zero
 * gradient, whatever values they hold.
 *
 *   const { loss, stats } = grpoLoss({ logProbs, advantages, completionMask, lossType: "grpo" });
 *   loss.backward();
 */
export function grpoLoss(input: GrpoLossInput): GrpoLossResult {
  const lossType = input.lossType ?? "dapo";
  const aggregate = Object.hasOwn(AGGREGATE, lossType) ? AGGREGATE[lossType] : undefined;
  if (!aggregate) throw new Error(`grpoLoss: lossType must be one of ${Object.keys(AGGREGATE).join(", ")}; got ${JSON.stringify(lossType)}`);
  const epsLow = input.epsilonLow ?? 0.2;
  const epsHigh = input.epsilonHigh ?? epsLow;
  if (!(epsLow >= 0 && epsLow < 1)) throw new Error(`grpoLoss: epsilonLow must be in [0, 1), got ${epsLow}`);
  if (!(epsHigh >= 0)) throw new Error(`grpoLoss: epsilonHigh must be >= 0, got ${epsHigh}`);
  const beta = input.beta ?? 0;
  if (!Number.isFinite(beta)) throw new Error(`grpoLoss: beta must be a finite number, got ${beta}`);
  const level = input.importanceSamplingLevel ?? "token";
  if (level !== "token" && level !== "sequence") throw new Error(`grpoLoss: importanceSamplingLevel must be "token" or "sequence", got ${JSON.stringify(level)}`);
  const accum = input.gradientAccumulationSteps ?? 1;
  if (!Number.isInteger(accum) || accum < 1) throw new Error(`grpoLoss: gradientAccumulationSteps must be a positive integer, got ${accum}`);
  const delta = input.delta ?? null;

  const lp0 = input.logProbs;
  if (lp0.ndim !== 2 || !lp0.isFloatingPoint) throw new Error(`grpoLoss: logProbs must be a float [B, T] tensor, got ${lp0.toString()}`);
  const shape = lp0.shape;
  const [B] = shape;
  checkShape("completionMask", input.completionMask, shape);
  if (input.oldLogProbs) checkShape("oldLogProbs", input.oldLogProbs, shape);
  if (beta !== 0 && !input.refLogProbs) throw new Error("grpoLoss: beta != 0 needs refLogProbs");
  if (input.refLogProbs) checkShape("refLogProbs", input.refLogProbs, shape);

  return tidy("grpoLoss", () => {
    const dtype = lp0.dtype;
    const device = lp0.device;
    const keep = input.completionMask.dtype === "bool" ? input.completionMask : input.completionMask.ne(0);
    const mask = keep.to(dtype);
    const drop = keep.logicalNot();
    // Padding may hold anything (even -inf); zeroing it first keeps NaN out of values and gradients.
    const clean = (t: Tensor) => (t.dtype === dtype ? t : t.to(dtype)).maskedFill(drop, 0);
    const lp = clean(lp0);
    const old = input.oldLogProbs ? clean(input.oldLogProbs) : lp.detach();

    let adv: Tensor;
    if (input.advantages instanceof Tensor) {
      const a = input.advantages;
      adv = a.dtype === dtype && a.device === device ? a : a.to(device, { dtype });
    } else {
      adv = tensor(Float64Array.from(input.advantages as ArrayLike<number>), { dtype, device });
    }
    if (adv.numel === B && adv.ndim <= 1) adv = adv.reshape(B, 1);
    else checkShape("advantages", adv, shape);
    adv = adv.detach();

    const logRatio = lp.sub(old);
    const logW = level === "token" ? logRatio : logRatio.mul(mask).sum(-1, true).div(mask.sum(-1, true).clamp(1)); // [B, T] or [B, 1]
    const coef1 = logW.exp();
    const coef2 = coef1.clamp(1 - epsLow, 1 + epsHigh);
    const capped = delta === null ? coef1 : coef1.clamp(null, delta);
    let perToken = capped.mul(adv).minimum(coef2.mul(adv)).neg();
    let kl: Tensor | null = null;
    if (input.refLogProbs) {
      const d = clean(input.refLogProbs).detach().sub(lp); // ref - logp
      kl = d.exp().sub(d).sub(1);
      if (input.biasCorrectionKl) kl = kl.mul(coef1); // coef1 is [B, 1] at sequence level: broadcast onto the tokens
      if (beta !== 0) perToken = perToken.add(kl.mul(beta));
    }
    const masked = perToken.mul(mask); // broadcasts [B, 1] (sequence level) to [B, T]
    const policyLoss = aggregate({ masked, mask, input });
    const loss = lossType === "dapo" || accum === 1 ? policyLoss : policyLoss.div(accum);

    const stats = noGrad(() => {
      const tokens = mask.sum();
      // Token-level quantities average over completion tokens; sequence-level ones ([B, 1]) over completions, as TRL logs them.
      const tokMean = (x: Tensor) => x.to(dtype).mul(mask).sum().div(tokens.clamp(1));
      const mmean = (x: Tensor) => (level === "sequence" ? x.to(dtype).mean() : tokMean(x));
      const low = coef1.lt(1 - epsLow).logicalAnd(adv.lt(0));
      const high = coef1.gt(1 + epsHigh).logicalAnd(adv.gt(0));
      const parts = [policyLoss.detach(), mmean(low), mmean(high), mmean(low.logicalOr(high)), mmean(coef1), tokens, kl ? tokMean(kl) : tokens.mul(0)];
      const v = stack(parts.map((p) => p.to("float64"))).toFlatArray();
      return { policyLoss: v[0], clipRatioLow: v[1], clipRatioHigh: v[2], clipRatioRegion: v[3], ratioMean: v[4], tokens: v[5], klMean: kl ? v[6] : null };
    });
    return { loss, stats };
  });
}

// ---- per-token helpers -------------------------------------------------------

/**
 * Zeroes the mask rows of truncated completions (TRL's
 * mask_truncated_completions): they then add nothing to the loss or to the
 * token count. Keeps the mask's dtype.
 */
export function maskTruncated(completionMask: Tensor, isTruncated: Tensor | readonly boolean[]): Tensor {
  if (completionMask.ndim !== 2) throw new Error(`maskTruncated: completionMask must be [B, T], got shape [${completionMask.shape.join(", ")}]`);
  const B = completionMask.size(0);
  const n = isTruncated instanceof Tensor ? isTruncated.numel : isTruncated.length;
  if (n !== B) throw new Error(`maskTruncated: ${n} truncation flags for ${B} completions`);
  return tidy(() => {
    const flags = isTruncated instanceof Tensor ? isTruncated.to(completionMask.device, { dtype: "bool" }) : tensor([...isTruncated], { dtype: "bool", device: completionMask.device });
    const keepRow = flags.reshape(B, 1).logicalNot();
    return completionMask.dtype === "bool" ? completionMask.logicalAnd(keepRow) : completionMask.mul(keepRow.to(completionMask.dtype));
  });
}

/**
 * Whether a completion was cut by the length limit: its last token is not a
 * stop token (EOS or pad), as TRL decides. An empty completion counts as truncated.
 */
export function isTruncatedCompletion(ids: readonly number[], stopIds: readonly number[]): boolean {
  return ids.length === 0 || !stopIds.includes(ids[ids.length - 1]);
}

/**
 * Shannon entropy (nats) of softmax(logits) over the last dim, for every
 * leading position: [..., V] -> [...]. Rows are processed `chunkSize` at a time
 * so that without autograd only one chunk's softmax is alive. Differentiable;
 * -inf logits (banned tokens) contribute 0, not NaN.
 */
export function entropyFromLogits(logits: Tensor, chunkSize = 128): Tensor {
  if (logits.ndim < 1) throw new Error("entropyFromLogits: logits need a vocabulary dim");
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new Error(`entropyFromLogits: chunkSize must be a positive integer, got ${chunkSize}`);
  const lead = logits.shape.slice(0, -1);
  const V = logits.size(-1);
  return tidy(() => {
    const flat = logits.reshape(-1, V);
    const parts = flat.split(chunkSize, 0).map((chunk) =>
      tidy(() => {
        const lp = F.logSoftmax(chunk, -1);
        const p = lp.exp(); // exactly 0 where lp = -inf
        const lpFinite = lp.maskedFill(lp.isfinite().logicalNot(), 0);
        return p.mul(lpFinite).sum(-1).neg();
      }),
    );
    return cat(parts, 0).reshape(lead);
  });
}

/**
 * log softmax(logits)[..., ids] without materializing the full log-softmax
 * at once: [B, T, V] logits and int64 [B, T] ids -> [B, T] log-probs.
 * float32/float64 use logit - logsumexp, one batch row at a time; half
 * precisions take the log-softmax of one row at a time (logsumexp is
 * unstable there, as TRL notes). Differentiable with respect to logits.
 */
export function selectiveLogProbs(logits: Tensor, ids: Tensor): Tensor {
  if (logits.ndim !== 3) throw new Error(`selectiveLogProbs: logits must be [B, T, V], got shape [${logits.shape.join(", ")}]`);
  const [B, T] = logits.shape;
  if (ids.ndim !== 2 || ids.size(0) !== B || ids.size(1) !== T) throw new Error(`selectiveLogProbs: ids must be [${B}, ${T}], got shape [${ids.shape.join(", ")}]`);
  if (ids.dtype !== "int64") throw new Error(`selectiveLogProbs: ids must be int64, got ${ids.dtype}`);
  return tidy(() => {
    const full = logits.dtype === "float32" || logits.dtype === "float64";
    const rows: Tensor[] = [];
    for (let b = 0; b < B; b++) {
      rows.push(
        tidy(() => {
          const row = logits.select(0, b); // [T, V]
          const idx = ids.select(0, b).unsqueeze(-1); // [T, 1]
          if (full) return row.gather(-1, idx).squeeze(-1).sub(row.logsumexp(-1));
          return F.logSoftmax(row, -1).gather(-1, idx).squeeze(-1);
        }),
      );
    }
    return stack(rows, 0);
  });
}
