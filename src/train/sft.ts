// Supervised warm-up: teach the answer format and a first decision on the
// labelled images. Loss on the assistant's tokens only (the canonical answer
// and the end-of-turn token), averaged over all target tokens of an optimizer
// step (so gradient accumulation equals one big batch).
import path from "node:path";
import type { RunConfig } from "../config/run_config.js";
import { loadSplits } from "../data/splits_from_config.js";
import type { Example } from "../data/types.js";
import { Progress } from "../io/progress.js";
import { disposeImageInputs } from "../models/vlm.js";
import { collateSft, IGNORE_INDEX } from "../policy/collate.js";
import { disposeEncoded, type EncodedPrompt } from "../policy/encoder.js";
import type { Policy } from "../policy/policy.js";
import { flipsForStep } from "../policy/augment.js";
import { DataParallel, F, noGrad, tidy } from "../torch/index.js";
import { describeImageCache, imageCacheMetrics } from "../policy/image_cache.js";
import { yieldToEventLoop } from "../torch/event_loop.js";
import { clipGradNorm } from "../torch/optim/index.js";
import { removeStaleTemporaries, resolveResume } from "./checkpoint.js";
import { DataCursor } from "./data_order.js";
import { mainLog, prepareRanks, resumeAcrossRanks, saveCheckpointAcrossRanks, StepSync } from "./data_parallel.js";
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
import { checkResumeSettings, describeChanges, readCheckpointConfig, reapplyOptimizerSettings } from "./resume_settings.js";
import { planOutputDir, prepareOutputDir } from "./run_dir.js";
import { openRunLogs, writeRunConfig } from "./run_logs.js";

export interface SftOptions {
  /** "auto" (latest checkpoint in output_dir, if any), a checkpoint folder, or a run folder. */
  resume?: string;
  /** Clear a non-empty output_dir (a run folder) first; without it (or resume) a non-empty one is refused. */
  overwrite?: boolean;
  /** The config file, so that --overwrite never deletes it. */
  configFile?: string;
  /** Stop after this many optimizer steps in this process (tests of resume); the run stays resumable. */
  stopAfterSteps?: number;
  /** Line logger. Default console.log. */
  log?: (line: string) => void;
  /** Show a progress bar / periodic lines. Default true. */
  progress?: boolean;
  /** The data-parallel workers this process is one of (torchrun, --nproc). Default: one process. */
  dp?: DataParallel;
}

export interface SftResult {
  runDir: string;
  /** HF folder of the trained model (LoRA merged); null when the run stopped early. */
  finalModelDir: string | null;
  steps: number;
  /** Mean target-token loss of each optimizer step run in this process. */
  losses: number[];
  valLoss: number | null;
  stoppedEarly: boolean;
  /** The signal that stopped the run (its checkpoint saved), or null. */
  interruptedBy: StopSignal | null;
}

/** Mean target-token cross-entropy of a micro-batch's logits, summed (divide by the step's token count). */
function sumTokenLoss(policy: Policy, examples: Example[], encoded: EncodedPrompt[], divisor: number) {
  const targets = examples.map((e) => policy.encoder.targetIds(e.labels));
  const batch = collateSft(encoded, targets, policy.padTokenId);
  try {
    return tidy(() => {
      const logits = policy.model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, ...(batch.images ?? {}) }).logits;
      const [b, t, v] = logits.shape;
      const shifted = logits.narrow(1, 0, t - 1).reshape(b * (t - 1), v);
      const labels = batch.labels.narrow(1, 1, t - 1).reshape(b * (t - 1));
      return F.crossEntropy(shifted, labels, { ignoreIndex: IGNORE_INDEX, reduction: "sum" }).div(divisor);
    });
  } finally {
    batch.inputIds.dispose();
    batch.attentionMask.dispose();
    batch.labels.dispose();
    disposeImageInputs(batch.images);
  }
}

/** Mean target-token loss over (up to `limit`) examples, without gradients, in eval mode; split across the ranks of `dp`. */
export async function validationLoss(policy: Policy, examples: Example[], microBatch: number, limit = 0, dp = DataParallel.single()): Promise<number | null> {
  const all = limit > 0 ? examples.slice(0, limit) : examples;
  if (all.length === 0) return null;
  const list = dp.shard(all);
  const wasTraining = policy.model.training;
  policy.model.eval();
  let total = 0;
  let tokens = 0;
  try {
    for (let i = 0; i < list.length; i += microBatch) {
      const chunk = list.slice(i, i + microBatch);
      const enc = await Promise.all(chunk.map((e) => policy.encoder.encodePrompt(e)));
      const n = chunk.reduce((s, e) => s + policy.encoder.targetIds(e.labels).length, 0);
      const l = noGrad(() => {
        const t = sumTokenLoss(policy, chunk, enc, 1);
        const v = t.item() as number;
        t.dispose();
        return v;
      });
      disposeEncoded(enc);
      total += l;
      tokens += n;
    }
  } finally {
    policy.model.train(wasTraining);
  }
  [total, tokens] = dp.allReduceNumbers([total, tokens]);
  return total / tokens;
}

export async function runSft(cfg: RunConfig, opts: SftOptions = {}): Promise<SftResult> {
  const dp = opts.dp ?? DataParallel.single();
  const log = mainLog(dp, opts.log ?? ((l: string) => console.log(l)));
  applyThreads(cfg);
  seedEverything(cfg.seed);
  const runDir = cfg.output_dir;
  // Validation first: nothing is written to output_dir before the folder plan, the
  // resumed settings, the data and the model have been checked. Rank 0 checks the
  // folder and the checkpoint; the others follow what it restores.
  const ref = dp.isMain ? resolveResume(opts.resume, runDir, log) : null;
  const plan = dp.isMain
    ? planOutputDir(runDir, {
        command: "sft",
        resume: opts.resume,
        resumeStep: ref?.step ?? null,
        overwrite: opts.overwrite,
        inputs: [["model folder", cfg.model], ["data", cfg.data.path], ...(opts.configFile ? ([["config file", opts.configFile]] as [string, string][]) : [])],
      })
    : null;
  const changes = ref ? checkResumeSettings(readCheckpointConfig(ref.path), cfg, "sft", ref.path) : [];
  const splits = await loadSplits(cfg.data, log);
  if (splits.train.length === 0) throw new Error(`sft: the train split of ${cfg.data.path} is empty`);
  const sc = cfg.sft;
  const policy = await loadTrainingPolicy(cfg, { freezeVision: sc.freeze_vision });
  prepareRanks(dp, policy.trainable, cfg.seed);
  // The global batch: each rank runs grad_accum micro-batches of its own shard.
  const perStep = sc.micro_batch_size * sc.grad_accum * dp.worldSize;
  const totalSteps = sc.max_steps > 0 ? sc.max_steps : Math.max(1, Math.ceil((sc.epochs * splits.train.length) / perStep));
  let optimizer: ReturnType<typeof makeOptimizer>;
  let scheduler: ReturnType<typeof makeScheduler>;
  let cursor = new DataCursor(splits.train.length, cfg.seed);
  let step = 0;
  let resumedFrom: string | null = null;
  try {
    optimizer = makeOptimizer(policy.trainable, sc.lr, sc.weight_decay);
    scheduler = makeScheduler(optimizer, sc.schedule, totalSteps, sc.warmup_ratio);
    const resumed = resumeAcrossRanks(dp, opts.resume, ref, { policy, optimizer, scheduler, cfg }, "sft");
    if (resumed) {
      // The restore brought back the checkpoint's lr, weight decay and schedule: this run's config decides them.
      reapplyOptimizerSettings(optimizer, scheduler, { lr: sc.lr, weightDecay: sc.weight_decay, schedule: sc.schedule, warmupRatio: sc.warmup_ratio, totalSteps });
      step = resumed.state.step;
      cursor = new DataCursor(splits.train.length, cfg.seed, resumed.state.position.epoch, resumed.state.position.index);
      resumedFrom = resumed.path;
    }
  } catch (e) {
    policy.dispose();
    throw e;
  }
  const parts = { policy, optimizer, scheduler, cfg };
  const applied = describeChanges(changes, step);
  if (plan) {
    for (const line of removeStaleTemporaries(runDir)) log(`sft: ${line}`);
    prepareOutputDir(runDir, plan);
    writeRunConfig(runDir, cfg, "sft", applied.length ? [`resumed at step ${step} from ${resumedFrom}; changed: ${applied.join("; ")}`] : []);
    if (plan.kind === "overwrite") log(`sft: cleared ${runDir} (--overwrite)`);
  }
  if (resumedFrom) log(`sft: resumed from ${resumedFrom} at step ${step}`);
  for (const a of applied) log(`sft: resume: ${a}`);
  const trainableCount = policy.trainable.reduce((s, t) => s + t.numel, 0);
  log(
    `sft: ${splits.train.length} train / ${splits.val.length} val examples; ${totalSteps} steps of ${perStep} examples; ` +
      `${policy.lora ? "LoRA" : "full"} fine-tuning, ${trainableCount.toLocaleString("en-US")} trainable parameters` +
      (dp.enabled ? `; ${dp.worldSize} processes, ${sc.micro_batch_size * sc.grad_accum} examples each per step` : ""),
  );
  const sinks = openRunLogs(dp, runDir, cfg);
  const stop = new StopRequest({ graceSeconds: cfg.stop_timeout_s, label: "sft" });
  const stepSync = new StepSync(dp, policy.trainable, cfg.distributed);
  const progress = opts.progress === false || !dp.isMain ? null : new Progress({ total: totalSteps - step, label: "sft", unit: "step" });
  const losses: number[] = [];
  let stoppedEarly = false;
  let ranHere = 0;
  try {
    while (step < totalSteps) {
      const t0 = performance.now();
      const idx = cursor.take(perStep);
      const globalBatch = idx.map((i) => splits.train[i]);
      // Normalized by the GLOBAL target-token count (every rank sees the whole batch's
      // labels), so that the ranks' gradients sum to the one-process gradient.
      const tokenCount = globalBatch.reduce((s, e) => s + policy.encoder.targetIds(e.labels).length, 0);
      // Drawn over the global batch (by step and position) before sharding: the same flips on any world size.
      const flips = flipsForStep(sc.augment, cfg.seed, step + 1, globalBatch.length);
      const shard = dp.shard(globalBatch.map((e, j) => ({ e, mirror: flips[j] })));
      let lossSum = 0;
      for (let m = 0; m < sc.grad_accum; m++) {
        const part = shard.slice(m * sc.micro_batch_size, (m + 1) * sc.micro_batch_size);
        const chunk = part.map((x) => x.e);
        if (chunk.length === 0) break;
        const enc = await Promise.all(part.map((x) => policy.encoder.encodePrompt(x.e, { mirror: x.mirror })));
        const loss = sumTokenLoss(policy, chunk, enc, tokenCount);
        disposeEncoded(enc);
        lossSum += loss.item() as number;
        loss.backward();
        loss.dispose();
      }
      // One event-loop turn per step (torch/event_loop.ts): frees released tensor handles and runs
      // signal handlers, so that a Ctrl-C has been seen before the ranks agree on stopping.
      await yieldToEventLoop();
      const synced = stepSync.finish([lossSum], stop.requested);
      lossSum = synced.sums[0];
      const gradNorm = clipGradNorm(policy.trainable, sc.max_grad_norm > 0 ? sc.max_grad_norm : Infinity);
      if (!Number.isFinite(lossSum) || !Number.isFinite(gradNorm)) {
        optimizer.zeroGrad();
        throw new NonFiniteLossError(`sft: the loss (${lossSum}) or gradient norm (${gradNorm}) is not finite at step ${step + 1}; stopping. The last good checkpoint stays in ${path.join(runDir, "checkpoints")}`);
      }
      optimizer.step();
      scheduler.step();
      optimizer.zeroGrad();
      step++;
      ranHere++;
      stepSync.checkWeights(step);
      losses.push(lossSum);
      const seconds = (performance.now() - t0) / 1000;
      const metrics: Record<string, number> = { "train/loss": lossSum, "train/lr": scheduler.lastLr()[0], "train/grad_norm": gradNorm, "train/epoch": cursor.epoch + cursor.index / splits.train.length, "perf/step_seconds": seconds, "perf/examples_per_second": perStep / seconds, "perf/rss_mib": process.memoryUsage.rss() / 2 ** 20, ...imageCacheMetrics(policy.encoder.cacheStats()), ...stepSync.metrics() };
      if (step % sc.log_every === 0 || step === totalSteps) sinks.log(step, metrics);
      progress?.tick(1, { loss: lossSum, lr: scheduler.lastLr()[0] });
      if (sc.eval_every > 0 && step % sc.eval_every === 0 && step < totalSteps) {
        const vl = await validationLoss(policy, splits.val, sc.micro_batch_size, sc.eval_examples, dp);
        if (vl !== null) {
          sinks.log(step, { "val/loss": vl });
          log(`sft: step ${step} val loss ${vl.toFixed(4)}`);
        }
      }
      const stopNow = synced.stop || (opts.stopAfterSteps !== undefined && ranHere >= opts.stopAfterSteps);
      if ((sc.save_every > 0 && step % sc.save_every === 0) || stopNow || step === totalSteps) {
        saveCheckpointAcrossRanks(dp, runDir, step, parts, "sft", cursor.position(), metrics);
      }
      if (stopNow && step < totalSteps) {
        stoppedEarly = true;
        log(`sft: stopped at step ${step}; resume with --resume auto`);
        break;
      }
    }
    progress?.done();
    log(`sft: ${describeImageCache(policy.encoder.cacheStats())}`);
    let valLoss: number | null = null;
    let finalModelDir: string | null = null;
    if (!stoppedEarly) {
      valLoss = await validationLoss(policy, splits.val, sc.micro_batch_size, sc.eval_examples, dp);
      if (valLoss !== null) {
        sinks.log(step, { "val/loss": valLoss });
        log(`sft: final val loss ${valLoss.toFixed(4)}`);
      }
      finalModelDir = path.join(runDir, "final");
      if (dp.isMain) await saveFinalModel(policy, finalModelDir);
      log(`sft: model written to ${finalModelDir}`);
    }
    if (!stoppedEarly) sinks.end("success");
    return { runDir, finalModelDir, steps: step, losses, valLoss, stoppedEarly, interruptedBy: stop.signal };
  } catch (e) {
    sinks.end("failure");
    throw e;
  } finally {
    stop.dispose();
    sinks.close();
    optimizer.dispose();
    policy.dispose();
  }
}
