// GRPO with the recall-first reward, following TRL's published semantics:
// per prompt, G sampled completions; total reward = weighted sum of reward
// functions; group-relative advantages (scale_rewards); a per-token clipped
// objective (epsilon, epsilon_high), optional k3 KL to the reference (the base
// weights with LoRA switched off) weighted by beta; loss types grpo, bnpo,
// dr_grpo and dapo; num_iterations optimizer passes per generation batch with
// the sampling-time log-probs as "old". Beyond TRL, the G completions of a
// prompt share one vision pass and one prompt KV cache during sampling, and
// the image features during scoring.
import path from "node:path";
import type { RunConfig } from "../config/run_config.js";
import { loadSplits } from "../data/splits_from_config.js";
import type { Example } from "../data/types.js";
import { Progress } from "../io/progress.js";
import { catImageGrids, catImageInputs } from "../models/vlm.js";
import { withAdaptersDisabled } from "../nn/lora.js";
import { collateCompletions, collatePrompts, disposePromptBatch, type PromptBatch } from "../policy/collate.js";
import { disposeEncoded, type EncodedPrompt } from "../policy/encoder.js";
import type { Policy } from "../policy/policy.js";
import { LocalRollout, type RolloutBackend } from "../policy/rollout.js";
import { buildRewardFunctions, computeRewards, makeRewardContext, type RewardSpec } from "../rewards/registry.js";
import type { RewardFunction } from "../rewards/types.js";
import { Generator, keep, noGrad, type Tensor, tensor, tidy } from "../torch/index.js";
import { clipGradNorm } from "../torch/optim/index.js";
import { resolveResume } from "./checkpoint.js";
import { DataCursor } from "./data_order.js";
import { entropyFromLogits, groupAdvantages, grpoLoss, selectiveLogProbs } from "./grpo_math.js";
import {
  applyThreads,
  loadTrainingPolicy,
  makeOptimizer,
  makeScheduler,
  NonFiniteLossError,
  openSinks,
  restoreTrainingCheckpoint,
  saveFinalModel,
  saveTrainingCheckpoint,
  seedEverything,
  StopRequest,
  writeResolvedConfig,
} from "./session.js";

export interface GrpoOptions {
  resume?: string;
  stopAfterSteps?: number;
  log?: (line: string) => void;
  progress?: boolean;
  /** Folder that user reward modules are relative to (the config file's folder). */
  configDir?: string;
}

export interface GrpoStepRecord {
  step: number;
  loss: number;
  rewardMean: number;
  zeroVarianceFraction: number;
  recall: number | null;
  fpr: number | null;
}

export interface GrpoResult {
  runDir: string;
  finalModelDir: string | null;
  steps: number;
  history: GrpoStepRecord[];
  stoppedEarly: boolean;
}

/** One generation round: prompts, their completions, rewards and advantages. */
interface Round {
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
class PromptSampler {
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

async function generateRound(policy: Policy, rollouts: RolloutBackend, examples: Example[], cfg: RunConfig, fns: RewardFunction[], sampler: Generator): Promise<Round> {
  const g = cfg.grpo;
  const encoded = await Promise.all(examples.map((e) => policy.encoder.encodePrompt(e)));
  const batch = collatePrompts(encoded, policy.padTokenId);
  let completions;
  try {
    completions = await rollouts.rollout({
      batch,
      numGenerations: g.num_generations,
      maxNewTokens: g.max_completion_length,
      temperature: g.temperature,
      topP: g.top_p,
      topK: g.top_k,
      generator: sampler,
      groupSharing: g.group_sharing,
    });
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
  const totals = await computeRewards(fns, ctx);
  const adv = groupAdvantages(totals.total, g.num_generations, g.scale_rewards);
  return {
    examples,
    encoded,
    batch,
    completions,
    rewards: totals.total,
    perFunction: totals.perFunction,
    advantages: adv.advantages,
    zeroVariance: Array.from(adv.zeroVarianceMask, (v) => Boolean(v)),
    parsedOffensive: ctx.parsed.map((p) => p.kind === "offensive"),
    parseable: ctx.parsed.map((p) => p.kind !== "unparseable"),
  };
}

function disposeRound(r: Round): void {
  disposePromptBatch(r.batch);
  disposeEncoded(r.encoded);
}

/** Keeps the groups `groups` of a round: a sub-round whose prompts move over (the rest are freed with `r`). */
function subRound(r: Round, groups: number[], G: number, padId: number): Round {
  const rows = groups.flatMap((gi) => Array.from({ length: G }, (_, k) => gi * G + k));
  const encoded = groups.map((gi) => r.encoded[gi]);
  // The kept prompts' image handles now belong to the sub-round; the dropped ones stay with r.
  r.encoded = r.encoded.filter((_, i) => !groups.includes(i));
  return {
    examples: groups.map((gi) => r.examples[gi]),
    encoded,
    batch: collatePrompts(encoded, padId),
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
function mergeRounds(rounds: Round[], padId: number): Round {
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
    batch: collatePrompts(encoded, padId),
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
function completionLogProbs(policy: Policy, round: Round, rows: number[], temperature: number, withEntropy: boolean): { logProbs: Tensor; mask: Tensor; entropy: number | null } {
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

export async function runGrpo(cfg: RunConfig, opts: GrpoOptions = {}): Promise<GrpoResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  applyThreads(cfg);
  seedEverything(cfg.seed);
  const g = cfg.grpo;
  const runDir = cfg.output_dir;
  writeResolvedConfig(runDir, cfg, "grpo");
  const splits = await loadSplits(cfg.data, log);
  if (splits.train.length === 0) throw new Error(`grpo: the train split of ${cfg.data.path} is empty`);
  const fns = await buildRewardFunctions(g.rewards as RewardSpec[], { configDir: opts.configDir });
  const policy = await loadTrainingPolicy(cfg, { freezeVision: true });
  const rollouts: RolloutBackend = new LocalRollout(policy);
  if (g.beta > 0 && !policy.lora) throw new Error("grpo: beta > 0 needs LoRA (lora.enabled: true): the reference policy is the base weights with the adapters switched off");
  const optimizer = makeOptimizer(policy.trainable, g.lr, g.weight_decay);
  const scheduler = makeScheduler(optimizer, g.schedule, g.steps, g.warmup_ratio);
  const samplerGen = new Generator(cfg.seed + 17);
  const parts = { policy, optimizer, scheduler, cfg, sampler: samplerGen };
  let step = 0;
  let sampler = new PromptSampler(splits.train, cfg.seed, g.stratify);
  const ref = resolveResume(opts.resume, runDir);
  if (ref) {
    const state = restoreTrainingCheckpoint(ref, parts, "grpo");
    step = state.step;
    sampler = new PromptSampler(splits.train, cfg.seed, g.stratify, state.position);
    log(`grpo: resumed from ${ref.path} at step ${step}`);
  }
  const G = g.num_generations;
  log(
    `grpo: ${splits.train.length} train prompts; ${g.steps} steps of ${g.prompts_per_step} prompts x ${G} completions; ` +
      `loss ${g.loss_type}, beta ${g.beta}, rewards ${fns.map((f) => `${f.name}x${f.weight}`).join(" + ")}`,
  );
  const sinks = openSinks(runDir);
  const stop = new StopRequest();
  const progress = opts.progress === false ? null : new Progress({ total: g.steps - step, label: "grpo", unit: "step" });
  const history: GrpoStepRecord[] = [];
  let stoppedEarly = false;
  let ranHere = 0;
  try {
    while (step < g.steps) {
      const t0 = performance.now();
      // ---- generation (with zero-variance handling) ------------------------------
      let round = await generateRound(policy, rollouts, sampler.take(g.prompts_per_step), cfg, fns, samplerGen);
      const firstZeroVar = round.zeroVariance.filter(Boolean).length / round.zeroVariance.length;
      if (g.zero_variance === "resample") {
        let attempts = 0;
        while (round.zeroVariance.some(Boolean) && attempts++ < g.resample_attempts) {
          const keepGroups = round.zeroVariance.map((z, i) => (z ? -1 : i)).filter((i) => i >= 0);
          const missing = g.prompts_per_step - keepGroups.length;
          const extra = await generateRound(policy, rollouts, sampler.take(missing), cfg, fns, samplerGen);
          if (keepGroups.length === 0) {
            disposeRound(round);
            round = extra;
          } else {
            const kept = subRound(round, keepGroups, G, policy.padTokenId);
            disposeRound(round);
            round = mergeRounds([kept, extra], policy.padTokenId);
          }
        }
      }
      const genSeconds = (performance.now() - t0) / 1000;
      const lossGroups = round.zeroVariance.map((z, i) => (g.zero_variance === "drop" && z ? -1 : i)).filter((i) => i >= 0);
      const lengths = round.completions.map((c) => c.tokenIds.length);
      const truncated = round.completions.map((c) => c.finishReason === "length");
      const totalTokens = round.completions.reduce((s, c, i) => s + (lossGroups.includes(Math.floor(i / G)) && !(g.mask_truncated_completions && truncated[i]) ? c.tokenIds.length : 0), 0);

      // ---- old / reference log-probs (fixed for this round) ------------------------
      const groupRows = (gi: number) => Array.from({ length: G }, (_, k) => gi * G + k);
      const oldLp = new Map<number, Tensor>();
      const refLp = new Map<number, Tensor>();
      if (g.num_iterations > 1 || g.beta > 0) {
        noGrad(() => {
          for (const gi of lossGroups) {
            if (g.num_iterations > 1) oldLp.set(gi, keep(completionLogProbs(policy, round, groupRows(gi), g.temperature, false).logProbs));
            if (g.beta > 0) refLp.set(gi, keep(withAdaptersDisabled(policy.model, () => completionLogProbs(policy, round, groupRows(gi), g.temperature, false).logProbs)));
          }
        });
      }

      // ---- optimization: num_iterations passes over the round ---------------------
      for (let it = 0; it < g.num_iterations && step < g.steps; it++) {
        let lossSum = 0;
        let klSum = 0;
        let klCount = 0;
        let clipLow = 0;
        let clipHigh = 0;
        let entropySum = 0;
        let tokenCount = 0;
        for (const gi of lossGroups) {
          const rows = groupRows(gi);
          const st = tidy(() => {
            const { logProbs, mask, entropy } = completionLogProbs(policy, round, rows, g.temperature, it === 0);
            let m = mask;
            if (g.mask_truncated_completions) m = m.mul(tensor(rows.map((r) => (truncated[r] ? 0 : 1)), { dtype: "int64" }).unsqueeze(1));
            const res = grpoLoss({
              logProbs,
              oldLogProbs: oldLp.get(gi) ?? null,
              refLogProbs: refLp.get(gi) ?? null,
              advantages: rows.map((r) => round.advantages[r]),
              completionMask: m,
              epsilonLow: g.epsilon,
              epsilonHigh: g.epsilon_high ?? g.epsilon,
              beta: g.beta,
              biasCorrectionKl: g.use_bias_correction_kl,
              lossType: g.loss_type,
              maxCompletionLength: g.max_completion_length,
              numItemsInBatch: Math.max(1, totalTokens),
              gradientAccumulationSteps: lossGroups.length,
            });
            res.loss.backward();
            return { loss: res.loss.item() as number, stats: res.stats, entropy };
          });
          lossSum += st.loss;
          if (st.stats.klMean !== null) {
            klSum += st.stats.klMean * st.stats.tokens;
            klCount += st.stats.tokens;
          }
          clipLow += st.stats.clipRatioLow * st.stats.tokens;
          clipHigh += st.stats.clipRatioHigh * st.stats.tokens;
          if (st.entropy !== null) entropySum += st.entropy * st.stats.tokens;
          tokenCount += st.stats.tokens;
        }
        const gradNorm = lossGroups.length ? clipGradNorm(policy.trainable, g.max_grad_norm > 0 ? g.max_grad_norm : Infinity) : 0;
        if (!Number.isFinite(lossSum) || !Number.isFinite(gradNorm)) {
          optimizer.zeroGrad();
          throw new NonFiniteLossError(`grpo: the loss (${lossSum}) or gradient norm (${gradNorm}) is not finite at step ${step + 1}; stopping. The last good checkpoint stays in ${path.join(runDir, "checkpoints")}`);
        }
        if (lossGroups.length) optimizer.step();
        scheduler.step();
        optimizer.zeroGrad();
        step++;
        ranHere++;

        // ---- metrics ----------------------------------------------------------------
        const seconds = (performance.now() - t0) / 1000;
        const m: Record<string, number> = {
          "train/loss": lossSum,
          "train/lr": scheduler.lastLr()[0],
          "train/grad_norm": gradNorm,
          "train/clip_ratio_low": tokenCount ? clipLow / tokenCount : 0,
          "train/clip_ratio_high": tokenCount ? clipHigh / tokenCount : 0,
          "train/zero_variance_fraction": firstZeroVar,
          "train/loss_groups": lossGroups.length,
          "perf/step_seconds": seconds,
          "perf/generation_seconds": genSeconds,
          "perf/completion_tokens_per_second": lengths.reduce((a, b) => a + b, 0) / Math.max(1e-9, genSeconds),
        };
        if (klCount) m["train/kl"] = klSum / klCount;
        if (it === 0 && tokenCount) m["train/entropy"] = entropySum / tokenCount;
        Object.assign(m, rewardStats(round), batchConfusion(round), lengthStats(lengths, truncated));
        if (step % g.log_every === 0 || step === g.steps) sinks.log(step, m);
        history.push({ step, loss: lossSum, rewardMean: m["reward/total_mean"], zeroVarianceFraction: firstZeroVar, recall: Number.isNaN(m["batch/recall"]) ? null : m["batch/recall"], fpr: Number.isNaN(m["batch/fpr"]) ? null : m["batch/fpr"] });
        progress?.tick(1, { reward: m["reward/total_mean"], recall: m["batch/recall"], zv: firstZeroVar });
      }
      for (const t of [...oldLp.values(), ...refLp.values()]) t.dispose();
      disposeRound(round);

      const stopNow = stop.requested || (opts.stopAfterSteps !== undefined && ranHere >= opts.stopAfterSteps);
      if ((g.save_every > 0 && step % g.save_every === 0) || stopNow || step >= g.steps) {
        saveTrainingCheckpoint(runDir, step, parts, "grpo", sampler.state());
      }
      if (stopNow && step < g.steps) {
        stoppedEarly = true;
        log(`grpo: stopped at step ${step}; resume with --resume auto`);
        break;
      }
    }
    progress?.done();
    let finalModelDir: string | null = null;
    if (!stoppedEarly) {
      finalModelDir = path.join(runDir, "final");
      await saveFinalModel(policy, finalModelDir);
      log(`grpo: model written to ${finalModelDir}`);
    }
    return { runDir, finalModelDir, steps: step, history, stoppedEarly };
  } finally {
    stop.dispose();
    sinks.close();
    optimizer.dispose();
    policy.dispose();
  }
}

function meanStd(xs: ArrayLike<number>): [number, number] {
  const v = Array.from(xs).filter((x) => !Number.isNaN(x));
  if (!v.length) return [NaN, NaN];
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  return [mean, sd];
}

function rewardStats(r: Round): Record<string, number> {
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
function batchConfusion(r: Round): Record<string, number> {
  let tp = 0;
  let fn = 0;
  let fp = 0;
  let tn = 0;
  r.completions.forEach((c, i) => {
    const offensive = r.examples[c.promptIndex].labels.length > 0;
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

function lengthStats(lengths: number[], truncated: boolean[]): Record<string, number> {
  const [m] = meanStd(lengths);
  return {
    "completion/length_mean": m,
    "completion/length_max": Math.max(...lengths),
    "completion/truncated_fraction": truncated.filter(Boolean).length / Math.max(1, truncated.length),
  };
}
