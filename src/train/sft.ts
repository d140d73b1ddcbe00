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
import { F, noGrad, tidy } from "../torch/index.js";
import { describeImageCache, imageCacheMetrics } from "../policy/image_cache.js";
import { yieldToEventLoop } from "../torch/event_loop.js";
import { clipGradNorm } from "../torch/optim/index.js";
import { removeStaleTemporaries, resolveResume } from "./checkpoint.js";
import { DataCursor } from "./data_order.js";
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
  type StopSignal,
  writeResolvedConfig,
} from "./session.js";

export interface SftOptions {
  /** "auto" (latest checkpoint in output_dir, if any), a checkpoint folder, or a run folder. */
  resume?: string;
  /** Stop after this many optimizer steps in this process (tests of resume); the run stays resumable. */
  stopAfterSteps?: number;
  /** Line logger. Default console.log. */
  log?: (line: string) => void;
  /** Show a progress bar / periodic lines. Default true. */
  progress?: boolean;
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

/** Mean target-token loss over (up to `limit`) examples, without gradients, in eval mode. */
export async function validationLoss(policy: Policy, examples: Example[], microBatch: number, limit = 0): Promise<number | null> {
  const list = limit > 0 ? examples.slice(0, limit) : examples;
  if (list.length === 0) return null;
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
  return total / tokens;
}

export async function runSft(cfg: RunConfig, opts: SftOptions = {}): Promise<SftResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  applyThreads(cfg);
  seedEverything(cfg.seed);
  const runDir = cfg.output_dir;
  for (const line of removeStaleTemporaries(runDir)) log(`sft: ${line}`);
  writeResolvedConfig(runDir, cfg, "sft");
  const splits = await loadSplits(cfg.data, log);
  if (splits.train.length === 0) throw new Error(`sft: the train split of ${cfg.data.path} is empty`);
  const sc = cfg.sft;
  const policy = await loadTrainingPolicy(cfg, { freezeVision: sc.freeze_vision });
  const perStep = sc.micro_batch_size * sc.grad_accum;
  const totalSteps = sc.max_steps > 0 ? sc.max_steps : Math.max(1, Math.ceil((sc.epochs * splits.train.length) / perStep));
  const optimizer = makeOptimizer(policy.trainable, sc.lr, sc.weight_decay);
  const scheduler = makeScheduler(optimizer, sc.schedule, totalSteps, sc.warmup_ratio);
  const parts = { policy, optimizer, scheduler, cfg };
  let cursor = new DataCursor(splits.train.length, cfg.seed);
  let step = 0;
  const ref = resolveResume(opts.resume, runDir, log);
  if (ref) {
    const state = restoreTrainingCheckpoint(ref, parts, "sft");
    step = state.step;
    cursor = new DataCursor(splits.train.length, cfg.seed, state.position.epoch, state.position.index);
    log(`sft: resumed from ${ref.path} at step ${step}`);
  }
  const trainableCount = policy.trainable.reduce((s, t) => s + t.numel, 0);
  log(
    `sft: ${splits.train.length} train / ${splits.val.length} val examples; ${totalSteps} steps of ${perStep} examples; ` +
      `${policy.lora ? "LoRA" : "full"} fine-tuning, ${trainableCount.toLocaleString("en-US")} trainable parameters`,
  );
  const sinks = openSinks(runDir);
  const stop = new StopRequest({ graceSeconds: cfg.stop_timeout_s, label: "sft" });
  const progress = opts.progress === false ? null : new Progress({ total: totalSteps - step, label: "sft", unit: "step" });
  const losses: number[] = [];
  let stoppedEarly = false;
  let ranHere = 0;
  try {
    while (step < totalSteps) {
      const t0 = performance.now();
      const idx = cursor.take(perStep);
      const examples = idx.map((i) => splits.train[i]);
      const tokenCount = examples.reduce((s, e) => s + policy.encoder.targetIds(e.labels).length, 0);
      let lossSum = 0;
      for (let m = 0; m < sc.grad_accum; m++) {
        const chunk = examples.slice(m * sc.micro_batch_size, (m + 1) * sc.micro_batch_size);
        const enc = await Promise.all(chunk.map((e) => policy.encoder.encodePrompt(e)));
        const loss = sumTokenLoss(policy, chunk, enc, tokenCount);
        disposeEncoded(enc);
        lossSum += loss.item() as number;
        loss.backward();
        loss.dispose();
      }
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
      losses.push(lossSum);
      const seconds = (performance.now() - t0) / 1000;
      const metrics: Record<string, number> = { "train/loss": lossSum, "train/lr": scheduler.lastLr()[0], "train/grad_norm": gradNorm, "train/epoch": cursor.epoch + cursor.index / splits.train.length, "perf/step_seconds": seconds, "perf/examples_per_second": perStep / seconds, "perf/rss_mib": process.memoryUsage.rss() / 2 ** 20, ...imageCacheMetrics(policy.encoder.cacheStats()) };
      if (step % sc.log_every === 0 || step === totalSteps) sinks.log(step, metrics);
      progress?.tick(1, { loss: lossSum, lr: scheduler.lastLr()[0] });
      if (sc.eval_every > 0 && step % sc.eval_every === 0 && step < totalSteps) {
        const vl = await validationLoss(policy, splits.val, sc.micro_batch_size, sc.eval_examples);
        if (vl !== null) {
          sinks.log(step, { "val/loss": vl });
          log(`sft: step ${step} val loss ${vl.toFixed(4)}`);
        }
      }
      // One event-loop turn per step: frees released tensor handles and runs signal handlers (torch/event_loop.ts).
      await yieldToEventLoop();
      const stopNow = stop.requested || (opts.stopAfterSteps !== undefined && ranHere >= opts.stopAfterSteps);
      if ((sc.save_every > 0 && step % sc.save_every === 0) || stopNow || step === totalSteps) {
        saveTrainingCheckpoint(runDir, step, parts, "sft", cursor.position(), metrics);
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
      valLoss = await validationLoss(policy, splits.val, sc.micro_batch_size, sc.eval_examples);
      if (valLoss !== null) {
        sinks.log(step, { "val/loss": valLoss });
        log(`sft: final val loss ${valLoss.toFixed(4)}`);
      }
      finalModelDir = path.join(runDir, "final");
      await saveFinalModel(policy, finalModelDir);
      log(`sft: model written to ${finalModelDir}`);
    }
    return { runDir, finalModelDir, steps: step, losses, valLoss, stoppedEarly, interruptedBy: stop.signal };
  } finally {
    stop.dispose();
    sinks.close();
    optimizer.dispose();
    policy.dispose();
  }
}
