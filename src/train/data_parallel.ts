// What the trainers need to run as several data-parallel processes (torchrun
// or `--nproc N`), kept out of sft.ts and grpo.ts so that a one-process run
// goes through the same calls as identities:
//
//  - rank 0 alone writes: log lines, metric sinks (JSONL, TensorBoard),
//    the resolved config, checkpoints and the final model;
//  - per-rank random streams: rank 0 keeps the run's seed (so a one-process
//    run is unchanged), rank r > 0 derives its own (dropout, sampling);
//  - the step: gradients all-reduced in buckets (sum: the trainers normalize
//    every loss by GLOBAL counts, so the sum is the one-process gradient),
//    then one small all-reduce of the step's scalar sums with the stop
//    request (Ctrl-C on any rank stops all at the same step); a NaN anywhere
//    reaches every rank through these sums and the gradients;
//  - checkpoints: rank 0 writes the usual files plus distributed.json (the
//    world size) and rng_ranks.safetensors (every other rank's RNG states,
//    gathered); resume reads on rank 0 and broadcasts weights, optimizer
//    state, schedule and each rank's RNG, so the other machines need no
//    access to rank 0's disk; a changed world size is refused by name;
//  - an optional cross-rank checksum of the trainable weights.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { RunConfig } from "../config/run_config.js";
import { hash32 } from "../data/rng.js";
import { loadSafetensors, saveSafetensors } from "../io/safetensors.js";
import { type DataParallel, type DType, dispose, fromBytes, type GradientSynchronizer, getRngState, manualSeed, noGrad, setRngState, type Tensor, zeros } from "../torch/index.js";
import { type CheckpointRef, readJson } from "./checkpoint.js";
import { type CheckpointParts, restoreTrainingCheckpoint, saveTrainingCheckpoint, type TrainerState } from "./session.js";

/** The file of a checkpoint that records how many processes saved it (absent: one). */
export const DISTRIBUTED_FILE = "distributed.json";
/** The other ranks' RNG states: `global.rank<r>` and `sampler.rank<r>` for r >= 1 (rank 0's are in rng.safetensors). */
export const RANK_RNG_FILE = "rng_ranks.safetensors";

type Log = (line: string) => void;

/** `log` on rank 0, nothing elsewhere (every rank would print the same lines). */
export function mainLog(dp: DataParallel, log: Log): Log {
  return dp.isMain ? log : () => {};
}

/** A seed for `purpose` on this rank: the run's seed on rank 0 (one-process runs unchanged), a derived one elsewhere. */
export function rankSeed(dp: DataParallel, seed: number, purpose: string): number {
  return dp.rank === 0 ? seed : hash32(purpose, seed, dp.rank) % 2 ** 31;
}

/**
 * After the model is built (every rank from the same seed, so LoRA starts
 * identical): rank 0's trainable weights go to every rank, as DDP does at
 * construction, and ranks > 0 move the global RNG to their own stream.
 */
export function prepareRanks(dp: DataParallel, trainable: readonly Tensor[], seed: number): void {
  if (!dp.enabled) return;
  noGrad(() => dp.broadcastTensors(trainable, 0));
  if (dp.rank > 0) manualSeed(rankSeed(dp, seed, "global"));
}

/** The end of one optimizer step's backward passes, across ranks. */
export class StepSync {
  private readonly grads: GradientSynchronizer | null;
  private last = { seconds: 0, waitSeconds: 0, bytes: 0, buckets: 0 };

  constructor(
    private readonly dp: DataParallel,
    private readonly params: readonly Tensor[],
    private readonly cfg: RunConfig["distributed"],
  ) {
    this.grads = dp.gradientSynchronizer(params, Math.max(1, Math.round(cfg.bucket_mb * 1024 * 1024)));
  }

  /**
   * All-reduces the gradients (sum), then `sums` (this rank's scalar sums of
   * the step) with the stop request; returns the global sums and whether any
   * rank asked to stop. In one process: the inputs unchanged.
   */
  finish(sums: readonly number[], stopRequested: boolean): { sums: number[]; stop: boolean } {
    if (!this.grads) return { sums: [...sums], stop: stopRequested };
    const st = this.dp.collective("gradient all-reduce", () => this.grads!.sync());
    this.last = { seconds: st.seconds, waitSeconds: st.waitSeconds, bytes: st.bytes, buckets: st.buckets };
    const all = this.dp.allReduceNumbers([...sums, stopRequested ? 1 : 0], "sum");
    return { sums: all.slice(0, sums.length), stop: all[sums.length] > 0 };
  }

  /** Communication figures of the last step (multi-process runs only). */
  metrics(): Record<string, number> {
    if (!this.grads) return {};
    return {
      "perf/allreduce_seconds": this.last.seconds,
      "perf/allreduce_wait_seconds": this.last.waitSeconds,
      "perf/allreduce_mb": this.last.bytes / (1024 * 1024),
      "perf/allreduce_buckets": this.last.buckets,
    };
  }

  /** Every check_weights_every steps: the trainable weights' checksum must agree on every rank. */
  checkWeights(step: number): void {
    const every = this.cfg.check_weights_every;
    if (!this.dp.enabled || every <= 0 || step % every !== 0) return;
    const h = crypto.createHash("sha256");
    for (const p of this.params) h.update(p.toBytes());
    const mine = h.digest("hex").slice(0, 16);
    const all = this.dp.allGatherJson(mine);
    if (all.some((d) => d !== all[0])) {
      throw new Error(`data parallel: the trainable weights differ across ranks after step ${step} (sha256 prefixes by rank: ${all.join(", ")}); the ranks no longer train the same model`);
    }
  }
}

// ---- checkpoints ---------------------------------------------------------------

/** How many processes saved a checkpoint (1 when it has no distributed.json). */
export function checkpointWorldSize(dir: string): number {
  const file = path.join(dir, DISTRIBUTED_FILE);
  if (!fs.existsSync(file)) return 1;
  const n = readJson<{ world_size?: unknown }>(file).world_size;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) throw new Error(`${file}: world_size must be a positive integer, got ${JSON.stringify(n)}`);
  return n;
}

/**
 * Saves a checkpoint with what every rank needs to resume. Every rank calls
 * it (the RNG states are gathered); rank 0 writes and returns the folder,
 * the others return null.
 */
export function saveCheckpointAcrossRanks(
  dp: DataParallel,
  runDir: string,
  step: number,
  parts: CheckpointParts,
  kind: "sft" | "grpo",
  position: Record<string, number>,
  metrics?: Record<string, number>,
): string | null {
  if (!dp.enabled) return saveTrainingCheckpoint(runDir, step, parts, kind, position, metrics);
  const gather = (t: Tensor) => {
    try {
      return dp.allGatherBytes(t.toBytes());
    } finally {
      t.dispose();
    }
  };
  const globals = gather(getRngState());
  const samplers = parts.sampler ? gather(parts.sampler.getState()) : null;
  if (!dp.isMain) return null;
  const writeExtra = (dir: string) => {
    fs.writeFileSync(path.join(dir, DISTRIBUTED_FILE), JSON.stringify({ world_size: dp.worldSize }, null, 1) + "\n");
    const rng: Record<string, Tensor> = {};
    for (let r = 1; r < dp.worldSize; r++) {
      rng[`global.rank${r}`] = fromBytes(globals[r], "uint8", [globals[r].length]);
      if (samplers) rng[`sampler.rank${r}`] = fromBytes(samplers[r], "uint8", [samplers[r].length]);
    }
    try {
      saveSafetensors(path.join(dir, RANK_RNG_FILE), rng);
    } finally {
      dispose(Object.values(rng));
    }
  };
  return saveTrainingCheckpoint(runDir, step, { ...parts, writeExtra }, kind, position, metrics);
}

interface TensorSpec {
  name: string;
  shape: number[];
  dtype: DType;
}

/** What rank 0 tells the others after reading a checkpoint. */
type RestoreNews = { error: string } | { path: string; state: TrainerState; optimizer: TensorSpec[]; rng: TensorSpec[] };

/**
 * Resolves `--resume` and restores the checkpoint on every rank: rank 0
 * reads it, then broadcasts weights, optimizer state and each rank's RNG
 * (so only rank 0 needs the files). Returns null when there is nothing to
 * resume. Throws on every rank, with the same message, when the checkpoint
 * cannot be used (the world size changed, a file is missing, ...).
 */
export function resumeAcrossRanks(
  dp: DataParallel,
  resume: string | undefined,
  ref: CheckpointRef | null,
  parts: CheckpointParts,
  kind: "sft" | "grpo",
): { path: string; state: TrainerState } | null {
  if (!dp.enabled) {
    if (!ref) return null;
    checkWorldSize(ref, 1);
    return { path: ref.path, state: restoreTrainingCheckpoint(ref, parts, kind) };
  }
  if (!resume) return null;
  let rankRng: Map<string, Tensor> | null = null;
  let news: RestoreNews | null = null;
  if (dp.isMain) {
    try {
      if (ref) {
        checkWorldSize(ref, dp.worldSize);
        const state = restoreTrainingCheckpoint(ref, parts, kind);
        rankRng = loadSafetensors(path.join(ref.path, RANK_RNG_FILE));
        const spec = (name: string, t: Tensor): TensorSpec => ({ name, shape: [...t.shape], dtype: t.dtype });
        news = {
          path: ref.path,
          state,
          optimizer: Object.entries(parts.optimizer.stateTensors()).map(([n, t]) => spec(n, t)),
          rng: [...rankRng].map(([n, t]) => spec(n, t)),
        };
      }
    } catch (e) {
      news = { error: (e as Error).message };
    }
  }
  news = dp.broadcastJson(news, 0);
  if (news === null) return null;
  if ("error" in news) {
    dispose([...(rankRng?.values() ?? [])]);
    throw new Error(dp.isMain ? news.error : `${news.error} (reported by rank 0)`);
  }
  const { state, optimizer: optSpecs, rng: rngSpecs } = news;
  // Weights.
  noGrad(() => dp.broadcastTensors(parts.policy.trainable, 0));
  // Optimizer state: rank 0's live buffers are the source; the others load copies.
  const optTensors = dp.isMain ? parts.optimizer.stateTensors() : Object.fromEntries(optSpecs.map((s) => [s.name, zeros(s.shape, { dtype: s.dtype })]));
  dp.broadcastTensors(optSpecs.map((s) => optTensors[s.name]), 0);
  if (!dp.isMain) {
    try {
      parts.optimizer.loadState(optTensors, state.optimizer);
    } finally {
      dispose(Object.values(optTensors));
    }
    parts.scheduler.loadStateDict(state.scheduler);
  }
  // Each rank's RNG.
  const rng = dp.isMain ? rankRng! : new Map(rngSpecs.map((s) => [s.name, zeros(s.shape, { dtype: s.dtype })]));
  try {
    dp.broadcastTensors(rngSpecs.map((s) => rng.get(s.name)!), 0);
    if (dp.rank > 0) {
      const g = rng.get(`global.rank${dp.rank}`);
      if (!g) throw new Error(`resume: ${news.path}/${RANK_RNG_FILE} has no state for rank ${dp.rank}`);
      setRngState(g);
      if (parts.sampler) {
        const s = rng.get(`sampler.rank${dp.rank}`);
        if (!s) throw new Error(`resume: ${news.path}/${RANK_RNG_FILE} has no sampler state for rank ${dp.rank}`);
        parts.sampler.setState(s);
      }
    }
  } finally {
    dispose([...rng.values()]);
  }
  return { path: news.path, state };
}

function checkWorldSize(ref: CheckpointRef, worldSize: number): void {
  const saved = checkpointWorldSize(ref.path);
  if (saved !== worldSize) {
    const procs = (n: number) => `${n} process${n === 1 ? "" : "es"}`;
    throw new Error(
      `resume: ${ref.path} was saved by ${procs(saved)}, this run has ${procs(worldSize)}: the world size changed. ` +
        `Resume with ${procs(saved)} (torchrun --nproc-per-node, or --nproc), or start a new run from its weights`,
    );
  }
}
