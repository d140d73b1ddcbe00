// GRPO with the recall-first reward, following TRL's published semantics:
// per prompt, G sampled completions; total reward = weighted sum of reward
// functions; group-relative advantages (scale_rewards); a per-token clipped
// objective (epsilon, epsilon_high), optional k3 KL to the reference (the base
// weights with LoRA switched off) weighted by beta; loss types grpo, bnpo,
// dr_grpo and dapo; num_iterations optimizer passes per generation batch with
// the sampling-time log-probs as "old". Beyond TRL, the G completions of a
// prompt share one vision pass and one prompt KV cache during sampling, and
// the image features during scoring.
//
// A run cannot fail silently: it stops (or warns, grpo.on_stall) when it has
// no learning signal for grpo.stall_steps steps (stall.ts); it evaluates on
// held-out images every grpo.eval_every steps and at the end (eval/*), and
// logs sample completions with their rewards (completions.jsonl, TensorBoard
// text). Its output folder follows run_dir.ts (refuse / --overwrite /
// --resume), and nothing is written before the config, data, reward
// functions, model and checkpoint have been checked.
import path from "node:path";
import type { RunConfig } from "../config/run_config.js";
import { loadSplits } from "../data/splits_from_config.js";
import { Progress } from "../io/progress.js";
import { withAdaptersDisabled } from "../nn/lora.js";
import type { Policy } from "../policy/policy.js";
import { LocalRollout, type RolloutBackend } from "../policy/rollout.js";
import { describeImageCache, imageCacheMetrics } from "../policy/image_cache.js";
import { buildRewardFunctions, closeRewardFunctions, type RewardSpec } from "../rewards/registry.js";
import { DataParallel, Generator, keep, liveTensors, noGrad, type Tensor, tensor, tidy } from "../torch/index.js";
import { yieldToEventLoop } from "../torch/event_loop.js";
import { clipGradNorm } from "../torch/optim/index.js";
import { removeStaleTemporaries, resolveResume } from "./checkpoint.js";
import { completionRecords, pickCompletionRows } from "./completion_samples.js";
import { mainLog, prepareRanks, rankSeed, resumeAcrossRanks, saveCheckpointAcrossRanks, StepSync } from "./data_parallel.js";
import { anyZeroVariance, drawReplacements, gatherSummary, promptStreamSeed, shardPrompts, summarizeRound, zeroVarianceFraction } from "./grpo_dp.js";
import { grpoLoss } from "./grpo_math.js";
import { batchConfusion, completionLogProbs, disposeRound, generateRound, lengthStats, mergeRounds, PromptSampler, rewardStats, type Round, subRound } from "./grpo_round.js";
import { BestHeldOut, type HeldOutFigures } from "./best_held_out.js";
import { heldOutEval, heldOutSample } from "./held_out_eval.js";
import { describeChanges, readCheckpointConfig, checkResumeSettings, reapplyOptimizerSettings } from "./resume_settings.js";
import { planOutputDir, prepareOutputDir } from "./run_dir.js";
import { openRunLogs, type RunLogger, writeRunConfig } from "./run_logs.js";
import {
  applyThreads,
  loadTrainingPolicy,
  makeOptimizer,
  makeScheduler,
  NonFiniteLossError,
  saveFinalModel,
  seedEverything,
  StopRequest,
  type StopSignal,
} from "./session.js";
import { describeStall, type Stall, StallDetector, TrainingStalledError } from "./stall.js";

export interface GrpoOptions {
  /** "auto" (latest checkpoint in output_dir, if any), a checkpoint folder, or a run folder. */
  resume?: string;
  /** Clear a non-empty output_dir (a run folder) first; without it (or resume) a non-empty one is refused. */
  overwrite?: boolean;
  stopAfterSteps?: number;
  log?: (line: string) => void;
  progress?: boolean;
  /** Folder that user reward modules are relative to (the config file's folder). */
  configDir?: string;
  /** The config file, so that --overwrite never deletes it. */
  configFile?: string;
  /** The data-parallel workers this process is one of (torchrun, --nproc). Default: one process. */
  dp?: DataParallel;
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
  /** Stalls seen with grpo.on_stall: warn (with stop, a stall throws TrainingStalledError). */
  stalls: Stall[];
  /** eval/* of every held-out evaluation, by step. */
  evals: { step: number; metrics: Record<string, number> }[];
  /** The signal that stopped the run (its checkpoint saved), or null. */
  interruptedBy: StopSignal | null;
  /** grpo.select_best: the held-out evaluation whose weights the final model has (null when off). */
  selected: HeldOutFigures | null;
}

/** A pass's sums over this rank's groups (token-weighted where a mean is wanted); summed over ranks by StepSync. */
interface PassSums {
  loss: number;
  klSum: number;
  klCount: number;
  clipLow: number;
  clipHigh: number;
  entropySum: number;
  tokens: number;
}
const PASS_KEYS = ["loss", "klSum", "klCount", "clipLow", "clipHigh", "entropySum", "tokens"] as const;

/**
 * One optimization pass over a round's loss groups: losses backpropagated,
 * gradients accumulated (not applied). The normalizers are global: the loss
 * groups and tokens of every rank (`globalGroups`, `totalTokens`).
 */
function lossPass(policy: Policy, cfg: RunConfig, round: Round, lossGroups: number[], oldLp: Map<number, Tensor>, refLp: Map<number, Tensor>, truncated: boolean[], totalTokens: number, globalGroups: number, withEntropy: boolean): PassSums {
  const g = cfg.grpo;
  const G = g.num_generations;
  let loss = 0;
  let klSum = 0;
  let klCount = 0;
  let clipLow = 0;
  let clipHigh = 0;
  let entropySum = 0;
  let tokens = 0;
  for (const gi of lossGroups) {
    const rows = Array.from({ length: G }, (_, k) => gi * G + k);
    const st = tidy(() => {
      const { logProbs, mask, entropy } = completionLogProbs(policy, round, rows, g.temperature, withEntropy);
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
        gradientAccumulationSteps: globalGroups,
      });
      res.loss.backward();
      return { loss: res.loss.item() as number, stats: res.stats, entropy };
    });
    loss += st.loss;
    if (st.stats.klMean !== null) {
      klSum += st.stats.klMean * st.stats.tokens;
      klCount += st.stats.tokens;
    }
    clipLow += st.stats.clipRatioLow * st.stats.tokens;
    clipHigh += st.stats.clipRatioHigh * st.stats.tokens;
    if (st.entropy !== null) entropySum += st.entropy * st.stats.tokens;
    tokens += st.stats.tokens;
  }
  return { loss, klSum, klCount, clipLow, clipHigh, entropySum, tokens };
}

/**
 * Samples a round of prompts; with zero_variance: resample, replaces groups
 * without reward variance. Every rank draws the same prompts and keeps its
 * contiguous share; `streamSeeds` gives "prompt" sampling streams their seeds.
 */
async function sampleRound(
  policy: Policy,
  rollouts: RolloutBackend,
  sampler: PromptSampler,
  cfg: RunConfig,
  fns: Awaited<ReturnType<typeof buildRewardFunctions>>,
  gen: Generator,
  dp: DataParallel,
  streamSeeds: (positions: number[], attempt: number) => number[] | null,
): Promise<{ round: Round; firstZeroVar: number }> {
  const g = cfg.grpo;
  const drawn = shardPrompts(dp, sampler.take(g.prompts_per_step));
  let round = await generateRound(policy, rollouts, drawn.examples, cfg, fns, gen, dp, streamSeeds(drawn.positions, 0));
  const firstZeroVar = zeroVarianceFraction(dp, round.zeroVariance);
  if (g.zero_variance === "resample") {
    let attempts = 0;
    while (anyZeroVariance(dp, round.zeroVariance) && attempts++ < g.resample_attempts) {
      const keepGroups = round.zeroVariance.map((z, i) => (z ? -1 : i)).filter((i) => i >= 0);
      const more = drawReplacements(dp, (n) => sampler.take(n), round.examples.length - keepGroups.length);
      const extra = await generateRound(policy, rollouts, more.examples, cfg, fns, gen, dp, streamSeeds(more.positions, attempts));
      if (keepGroups.length === 0) {
        disposeRound(round);
        round = extra;
      } else {
        const kept = subRound(round, keepGroups, g.num_generations, policy.padTokenId);
        disposeRound(round);
        round = mergeRounds([kept, extra], policy.padTokenId);
      }
    }
  }
  return { round, firstZeroVar };
}

const parsedKind = (r: Round, i: number): "safe" | "offensive" | "unparseable" => (!r.parseable[i] ? "unparseable" : r.parsedOffensive[i] ? "offensive" : "safe");

/** The sample completions of a round as records (completion_samples.ts). */
function sampleRecords(step: number, r: Round, G: number, count: number) {
  const rows = pickCompletionRows(r.examples.length, G, count);
  return completionRecords(
    step,
    {
      G,
      promptIds: r.examples.map((e) => e.id),
      labels: r.examples.map((e) => e.labels),
      texts: r.completions.map((c) => c.text),
      parsed: r.completions.map((_, i) => parsedKind(r, i)),
      perFunction: r.perFunction,
      rewards: r.rewards,
      advantages: r.advantages,
    },
    rows,
  );
}

export async function runGrpo(cfg: RunConfig, opts: GrpoOptions = {}): Promise<GrpoResult> {
  const dp = opts.dp ?? DataParallel.single();
  const log = mainLog(dp, opts.log ?? ((l: string) => console.log(l)));
  applyThreads(cfg);
  seedEverything(cfg.seed);
  const g = cfg.grpo;
  const G = g.num_generations;
  const runDir = cfg.output_dir;

  // ---- validation: nothing is written to output_dir before all of it passes ------
  if (g.beta > 0 && !cfg.lora.enabled) throw new Error("grpo: beta > 0 needs LoRA (lora.enabled: true): the reference policy is the base weights with the adapters switched off");
  if (g.select_best && g.eval_every === 0) throw new Error("grpo: select_best needs grpo.eval_every > 0 (the held-out evaluations it chooses among)");
  // Rank 0 checks the folder and the checkpoint; the others follow what it restores.
  const ref = dp.isMain ? resolveResume(opts.resume, runDir, log) : null;
  const plan = dp.isMain
    ? planOutputDir(runDir, {
        command: "grpo",
        resume: opts.resume,
        resumeStep: ref?.step ?? null,
        overwrite: opts.overwrite,
        inputs: [["model folder", cfg.model], ["data", cfg.data.path], ...(opts.configFile ? ([["config file", opts.configFile]] as [string, string][]) : [])],
      })
    : null;
  const changes = ref ? checkResumeSettings(readCheckpointConfig(ref.path), cfg, "grpo", ref.path) : [];
  const splits = await loadSplits(cfg.data, log);
  if (splits.train.length === 0) throw new Error(`grpo: the train split of ${cfg.data.path} is empty`);
  const evalSet = heldOutSample(splits.val, g.eval_examples, cfg.seed);
  if (g.select_best && evalSet.length === 0) throw new Error(`grpo: select_best needs a val split, and the one of ${cfg.data.path} is empty (set data.val_fraction or give rows split: val)`);
  const fns = await buildRewardFunctions(g.rewards as RewardSpec[], { configDir: opts.configDir, timeoutSeconds: g.reward_timeout_s });
  const policy = await loadTrainingPolicy(cfg, { freezeVision: g.freeze_vision });
  let optimizer: ReturnType<typeof makeOptimizer> | undefined;
  let logs: RunLogger | undefined;
  let stop: StopRequest | undefined;
  let ended = false;
  try {
    prepareRanks(dp, policy.trainable, cfg.seed);
    const rollouts: RolloutBackend = new LocalRollout(policy);
    optimizer = makeOptimizer(policy.trainable, g.lr, g.weight_decay);
    const scheduler = makeScheduler(optimizer, g.schedule, g.steps, g.warmup_ratio);
    const samplerGen = new Generator(rankSeed(dp, cfg.seed + 17, "sampler"));
    const parts = { policy, optimizer, scheduler, cfg, sampler: samplerGen };
    let step = 0;
    let sampler = new PromptSampler(splits.train, cfg.seed, g.stratify);
    const resumed = resumeAcrossRanks(dp, opts.resume, ref, parts, "grpo");
    if (resumed) {
      const state = resumed.state;
      // The restore brought back the checkpoint's lr, weight decay and schedule: this run's config decides them.
      reapplyOptimizerSettings(optimizer, scheduler, { lr: g.lr, weightDecay: g.weight_decay, schedule: g.schedule, warmupRatio: g.warmup_ratio, totalSteps: g.steps });
      step = state.step;
      sampler = new PromptSampler(splits.train, cfg.seed, g.stratify, state.position);
    }

    // ---- the run folder ----------------------------------------------------------------
    const applied = describeChanges(changes, step);
    if (plan) {
      for (const line of removeStaleTemporaries(runDir)) log(`grpo: ${line}`);
      prepareOutputDir(runDir, plan);
      writeRunConfig(runDir, cfg, "grpo", applied.length ? [`resumed at step ${step} from ${resumed!.path}; changed: ${applied.join("; ")}`] : []);
      if (plan.kind === "overwrite") log(`grpo: cleared ${runDir} (--overwrite)`);
    }
    logs = openRunLogs(dp, runDir, cfg);
    if (resumed) log(`grpo: resumed from ${resumed.path} at step ${step}`);
    for (const a of applied) log(`grpo: resume: ${a}`);
    log(
      `grpo: ${splits.train.length} train prompts; ${g.steps} steps of ${g.prompts_per_step} prompts x ${G} completions; ` +
        `loss ${g.loss_type}, beta ${g.beta}, rewards ${fns.map((f) => `${f.name}x${f.weight}`).join(" + ")}` +
        (dp.enabled ? `; prompts split over ${dp.worldSize} processes` : ""),
    );
    if ((g.eval_every > 0 || g.final_eval) && evalSet.length === 0) log("grpo: the val split is empty: no held-out evaluation (set data.val_fraction or give rows split: val)");

    const evals: GrpoResult["evals"] = [];
    let lastEvalStep = -1;
    const best = g.select_best ? new BestHeldOut(runDir, g.select_max_fpr, dp.isMain) : null;
    const evaluate = async (at: number) => {
      if (evalSet.length === 0) return;
      const m = await heldOutEval(policy, evalSet, cfg, dp);
      logs!.log(at, m);
      evals.push({ step: at, metrics: m });
      lastEvalStep = at;
      const f = (k: string) => (m[k] === undefined ? "n/a" : m[k].toFixed(3));
      let note = "";
      if (best) {
        if (m["eval/recall"] === undefined || m["eval/fpr"] === undefined) note = " (select_best: needs offensive and safe val images; not considered)";
        else if (best.consider({ step: at, recall: m["eval/recall"], fpr: m["eval/fpr"] }, policy)) note = " (the best so far: kept)";
      }
      log(`grpo: step ${at} held-out eval (${m["eval/n"]} val images): recall ${f("eval/recall")}, FPR ${f("eval/fpr")}, unparseable ${f("eval/unparseable_rate")}${note}`);
    };

    stop = new StopRequest({ graceSeconds: cfg.stop_timeout_s, label: "grpo" });
    const stallDetector = new StallDetector(g.stall_steps);
    const stalls: Stall[] = [];
    const stepSync = new StepSync(dp, policy.trainable, cfg.distributed);
    // "prompt" streams: each group's sampling seeded by (seed, step, attempt, its position in the draw).
    const streamSeeds = (positions: number[], attempt: number) => (g.sampling_streams === "prompt" ? positions.map((p) => promptStreamSeed(cfg.seed, step, attempt, p)) : null);
    const progress = opts.progress === false || !dp.isMain ? null : new Progress({ total: g.steps - step, label: "grpo", unit: "step" });
    const history: GrpoStepRecord[] = [];
    let stoppedEarly = false;
    let ranHere = 0;
    while (step < g.steps) {
      const t0 = performance.now();
      const { round, firstZeroVar } = await sampleRound(policy, rollouts, sampler, cfg, fns, samplerGen, dp, streamSeeds);
      const oldLp = new Map<number, Tensor>();
      const refLp = new Map<number, Tensor>();
      try {
        const genSeconds = (performance.now() - t0) / 1000;
        const lossGroups = round.zeroVariance.map((z, i) => (g.zero_variance === "drop" && z ? -1 : i)).filter((i) => i >= 0);
        const truncated = round.completions.map((c) => c.finishReason === "length");
        const localTokens = round.completions.reduce((s, c, i) => s + (lossGroups.includes(Math.floor(i / G)) && !(g.mask_truncated_completions && truncated[i]) ? c.tokenIds.length : 0), 0);
        // The loss normalizers count every rank's groups and tokens (dapo's num_items_in_batch is global in TRL too).
        const [globalLossGroups, totalTokens] = dp.allReduceNumbers([lossGroups.length, localTokens]);
        const summary = gatherSummary(dp, summarizeRound(round));
        const trainedZeroVar = zeroVarianceFraction(dp, round.zeroVariance);

        // ---- old / reference log-probs (fixed for this round) ----------------------------
        const groupRows = (gi: number) => Array.from({ length: G }, (_, k) => gi * G + k);
        if (g.num_iterations > 1 || g.beta > 0) {
          noGrad(() => {
            for (const gi of lossGroups) {
              if (g.num_iterations > 1) oldLp.set(gi, keep(completionLogProbs(policy, round, groupRows(gi), g.temperature, false).logProbs));
              if (g.beta > 0) refLp.set(gi, keep(withAdaptersDisabled(policy.model, () => completionLogProbs(policy, round, groupRows(gi), g.temperature, false).logProbs)));
            }
          });
        }

        // ---- optimization: num_iterations passes over the round -------------------------
        for (let it = 0; it < g.num_iterations && step < g.steps; it++) {
          const local = lossPass(policy, cfg, round, lossGroups, oldLp, refLp, truncated, totalTokens, globalLossGroups, it === 0);
          // Gradients and the pass's sums over every rank (one bucketed all-reduce in a data-parallel run).
          const sums = stepSync.finish(PASS_KEYS.map((k) => local[k]), false).sums;
          const [loss, klSum, klCount, clipLowSum, clipHighSum, entropySum, tokens] = sums;
          const pass = { loss, klMean: klCount ? klSum / klCount : null, clipLow: tokens ? clipLowSum / tokens : 0, clipHigh: tokens ? clipHighSum / tokens : 0, entropy: it === 0 && tokens ? entropySum / tokens : null };
          const gradNorm = globalLossGroups ? clipGradNorm(policy.trainable, g.max_grad_norm > 0 ? g.max_grad_norm : Infinity) : 0;
          if (!Number.isFinite(pass.loss) || !Number.isFinite(gradNorm)) {
            optimizer.zeroGrad();
            throw new NonFiniteLossError(`grpo: the loss (${pass.loss}) or gradient norm (${gradNorm}) is not finite at step ${step + 1}; stopping. The last good checkpoint stays in ${path.join(runDir, "checkpoints")}`);
          }
          if (globalLossGroups) optimizer.step();
          scheduler.step();
          optimizer.zeroGrad();
          step++;
          ranHere++;
          stepSync.checkWeights(step);

          // ---- metrics ------------------------------------------------------------------
          const m: Record<string, number> = {
            "train/loss": pass.loss,
            "train/lr": scheduler.lastLr()[0],
            "train/grad_norm": gradNorm,
            "train/clip_ratio_low": pass.clipLow,
            "train/clip_ratio_high": pass.clipHigh,
            "train/zero_variance_fraction": firstZeroVar,
            "train/loss_groups": globalLossGroups,
            "perf/step_seconds": (performance.now() - t0) / 1000,
            "perf/generation_seconds": genSeconds,
            "perf/completion_tokens_per_second": summary.lengths.reduce((a, b) => a + b, 0) / Math.max(1e-9, genSeconds),
            ...stepSync.metrics(),
          };
          if (pass.klMean !== null) m["train/kl"] = pass.klMean;
          if (pass.entropy !== null) m["train/entropy"] = pass.entropy;
          Object.assign(m, rewardStats(summary), batchConfusion(summary), lengthStats(summary.lengths, summary.truncated), imageCacheMetrics(policy.encoder.cacheStats()));
          // Memory, to catch growth in long runs: resident set, V8's heap, live tensor handles.
          m["perf/rss_mib"] = process.memoryUsage.rss() / 2 ** 20;
          m["perf/js_heap_mib"] = process.memoryUsage().heapUsed / 2 ** 20;
          m["perf/live_tensors"] = liveTensors();
          const stall = stallDetector.observe({ step, zeroVarianceFraction: trainedZeroVar, unparseableRate: m["batch/unparseable_rate"], gradNorm, lossGroups: globalLossGroups });
          if (step % g.log_every === 0 || step === g.steps || stall) logs.log(step, m);
          if ((g.log_completions_every > 0 && step % g.log_completions_every === 0) || stall) logs.completions(step, sampleRecords(step, round, G, g.log_completions_count));
          history.push({ step, loss: pass.loss, rewardMean: m["reward/total_mean"], zeroVarianceFraction: firstZeroVar, recall: Number.isNaN(m["batch/recall"]) ? null : m["batch/recall"], fpr: Number.isNaN(m["batch/fpr"]) ? null : m["batch/fpr"] });
          progress?.tick(1, { reward: m["reward/total_mean"], recall: m["batch/recall"], zv: firstZeroVar });

          if (stall) {
            const message = describeStall(stall, {
              example: round.completions[0]?.text,
              meanReward: m["reward/total_mean"],
              truncatedFraction: m["completion/truncated_fraction"],
              maxCompletionLength: g.max_completion_length,
              temperature: g.temperature,
              numGenerations: G,
              zeroVarianceMode: g.zero_variance,
            });
            if (g.on_stall === "stop") {
              const ckpt = saveCheckpointAcrossRanks(dp, runDir, step, parts, "grpo", sampler.state());
              logs.end("failure");
              ended = true;
              throw new TrainingStalledError(
                `grpo: ${message}\nStopped at step ${step} without writing a final model (grpo.on_stall: stop); checkpoint: ${ckpt}. ` +
                  `Change the settings and continue with --resume auto, or set grpo.on_stall: warn to train on regardless.`,
                stall,
              );
            }
            stalls.push(stall);
            log(`grpo: warning: ${message}\n(grpo.on_stall: warn: training goes on)`);
          }
          if (g.eval_every > 0 && step % g.eval_every === 0) await evaluate(step);
        }
      } finally {
        for (const t of [...oldLp.values(), ...refLp.values()]) t.dispose();
        disposeRound(round);
      }

      // One event-loop turn per step (torch/event_loop.ts): frees released tensor handles and runs
      // signal handlers, so that a Ctrl-C has been seen before the ranks agree on stopping.
      await yieldToEventLoop();
      const stopNow = dp.anyTrue(stop.requested) || (opts.stopAfterSteps !== undefined && ranHere >= opts.stopAfterSteps);
      if ((g.save_every > 0 && step % g.save_every === 0) || stopNow || step >= g.steps) {
        saveCheckpointAcrossRanks(dp, runDir, step, parts, "grpo", sampler.state());
      }
      if (stopNow && step < g.steps) {
        stoppedEarly = true;
        log(`grpo: stopped at step ${step}; resume with --resume auto`);
        break;
      }
    }
    progress?.done();
    log(`grpo: ${describeImageCache(policy.encoder.cacheStats())}`);
    let finalModelDir: string | null = null;
    let selected: HeldOutFigures | null = null;
    if (!stoppedEarly) {
      if (g.final_eval && lastEvalStep !== step) await evaluate(step);
      if (best) {
        // Only the main process writes the final model, so only it needs the best weights back.
        selected = dp.isMain ? best.restoreInto(policy, cfg) : best.best;
        if (selected === null) log("grpo: warning: select_best: no held-out evaluation could be compared (the val split needs offensive and safe images); the final model is the last step's");
        else if (!best.inBudget) log(`grpo: warning: select_best: no held-out evaluation had FPR <= ${g.select_max_fpr}; the final model is the one with the lowest, step ${selected.step} (recall ${selected.recall.toFixed(3)}, FPR ${selected.fpr.toFixed(3)})`);
        else log(`grpo: select_best: the final model is step ${selected.step}'s (held-out recall ${selected.recall.toFixed(3)} at FPR ${selected.fpr.toFixed(3)} <= ${g.select_max_fpr})`);
      }
      finalModelDir = path.join(runDir, "final");
      if (dp.isMain) await saveFinalModel(policy, finalModelDir);
      log(`grpo: model written to ${finalModelDir}`);
      logs.end("success");
      ended = true;
    }
    return { runDir, finalModelDir, steps: step, history, stoppedEarly, stalls, evals, interruptedBy: stop?.signal ?? null, selected };
  } catch (e) {
    if (logs && !ended) logs.end("failure");
    throw e;
  } finally {
    stop?.dispose();
    await closeRewardFunctions(fns);
    logs?.close();
    optimizer?.dispose();
    policy.dispose();
  }
}
