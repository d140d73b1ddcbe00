// What SFT and GRPO share: loading the policy for training, optimizer and
// schedule, checkpoints with exact resume, the final model folder, metric
// sinks and Ctrl-C handling.
import fs from "node:fs";
import path from "node:path";
import { dumpConfig } from "../config/load.js";
import { policyOptions } from "../config/policy_options.js";
import type { RunConfig } from "../config/run_config.js";
import { writeTextFileAtomic } from "../io/atomic.js";
import { loadSafetensors, saveSafetensors } from "../io/safetensors.js";
import { JsonlSink } from "../io/sinks/jsonl.js";
import { type MetricSink, MultiSink } from "../io/sinks/multi.js";
import { TensorBoardSink } from "../io/sinks/tensorboard.js";
import { loadWeights, savePretrained } from "../models/load.js";
import { saveAdapter } from "../models/peft.js";
import { loraModules, mergeAdapters, unmergeAdapters } from "../nn/lora.js";
import { cardPromptDifferences, makeModelCard, writeModelCard } from "../policy/model_card.js";
import { loadPolicy, type Policy } from "../policy/policy.js";
import { dispose, type Generator, getRngState, manualSeed, noGrad, setNumThreads, setRngState, type Tensor } from "../torch/index.js";
import { AdamW, LRScheduler } from "../torch/optim/index.js";
import { type CheckpointRef, readJson, saveCheckpoint } from "./checkpoint.js";

export function applyThreads(cfg: RunConfig): void {
  if (cfg.threads) setNumThreads(cfg.threads);
}

/** The run config's model, prepared for training (LoRA or full fine-tuning as cfg.lora says). */
export async function loadTrainingPolicy(cfg: RunConfig, opts: { freezeVision?: boolean } = {}): Promise<Policy> {
  const policy = await loadPolicy(policyOptions(cfg, { train: true, freezeVision: opts.freezeVision }));
  // The run's config sets the prompt; say so when the base model was trained with another one.
  const diff = policy.card ? cardPromptDifferences(policy.card, policy.prompt) : [];
  if (diff.length > 0) console.warn(`warning: ${cfg.model} was trained with another ${diff.join(", ")} (its vlm_grpo.json); this run trains with the config's (prompt.*, data.categories)`);
  return policy;
}

export function makeOptimizer(params: Tensor[], lr: number, weightDecay: number): AdamW {
  if (params.length === 0) throw new Error("nothing to train: no parameter requires grad");
  return new AdamW(params, { lr, weightDecay });
}

export function makeScheduler(opt: AdamW, kind: "constant" | "constant_with_warmup" | "linear" | "cosine", totalSteps: number, warmupRatio: number): LRScheduler {
  const warmupSteps = Math.round(totalSteps * warmupRatio);
  const k = kind === "constant" && warmupSteps > 0 ? "constant_with_warmup" : kind;
  return new LRScheduler(opt, { kind: k, warmupSteps, totalSteps });
}

// ---- checkpoints -------------------------------------------------------------------

export interface TrainerState {
  kind: "sft" | "grpo";
  step: number;
  /** Trainer-specific position and counters (data cursor, epoch, ...). */
  position: Record<string, number>;
  scheduler: ReturnType<LRScheduler["stateDict"]>;
  optimizer: ReturnType<AdamW["stateMeta"]>;
  lora: boolean;
  /** Last logged metrics (for humans). */
  metrics?: Record<string, number>;
}

export interface CheckpointParts {
  policy: Policy;
  optimizer: AdamW;
  scheduler: LRScheduler;
  /** The sampling generator (GRPO), saved beside the global RNG. */
  sampler?: Generator;
  cfg: RunConfig;
  /** Writes more files into the checkpoint folder before it is published (the other ranks' state: train/data_parallel.ts). */
  writeExtra?: (dir: string) => void;
}

/** Saves a resumable checkpoint (atomic); returns its folder. */
export function saveTrainingCheckpoint(runDir: string, step: number, parts: CheckpointParts, kind: "sft" | "grpo", position: Record<string, number>, metrics?: Record<string, number>): string {
  const { policy, optimizer, scheduler, sampler, cfg } = parts;
  return saveCheckpoint(
    runDir,
    step,
    (dir) => {
      writeTrainedWeights(policy, dir);
      saveSafetensors(path.join(dir, "optimizer.safetensors"), optimizer.stateTensors());
      const rng: Record<string, Tensor> = { global: getRngState() };
      if (sampler) rng.sampler = sampler.getState();
      saveSafetensors(path.join(dir, "rng.safetensors"), rng);
      dispose(Object.values(rng));
      const state: TrainerState = { kind, step, position, scheduler: scheduler.stateDict(), optimizer: optimizer.stateMeta(), lora: policy.lora, metrics };
      fs.writeFileSync(path.join(dir, "trainer_state.json"), JSON.stringify(state, null, 1) + "\n");
      fs.writeFileSync(path.join(dir, "config.yaml"), dumpConfig(cfg, { header: `vlm-grpo ${kind} run config (resolved)` }));
      parts.writeExtra?.(dir);
    },
    { keepLast: kind === "sft" ? cfg.sft.keep_last : cfg.grpo.keep_last },
  );
}

/** The lora.rank a checkpoint was saved with, from its config.yaml (for hints in errors), or null. */
function savedLoraRank(dir: string): number | null {
  try {
    const text = fs.readFileSync(path.join(dir, "config.yaml"), "utf8");
    const section = /^lora:[ \t]*\n((?:[ \t]+.*(?:\n|$))*)/m.exec(text)?.[1] ?? "";
    const rank = /^[ \t]+rank:[ \t]*(\d+)/m.exec(section)?.[1];
    return rank === undefined ? null : Number(rank);
  } catch {
    return null;
  }
}

/** The trained weights into `dir`: the adapter (adapter/, PEFT format) with LoRA, else model.safetensors. */
export function writeTrainedWeights(policy: Policy, dir: string): void {
  if (policy.lora) {
    saveAdapter(policy.model, path.join(dir, "adapter"), { baseModel: policy.modelDir });
  } else {
    saveSafetensors(path.join(dir, "model.safetensors"), policy.model.stateDict(), { format: "pt" });
  }
}

/** Copies the weights `writeTrainedWeights` wrote in `dir` into the policy (every key and shape checked first); `where` starts the errors. */
export function readTrainedWeights(dir: string, policy: Policy, cfg: RunConfig, where: string): void {
  noGrad(() => {
    if (policy.lora) {
      const file = path.join(dir, "adapter", "adapter_model.safetensors");
      const tensors = loadSafetensors(file);
      try {
        const mods = loraModules(policy.model);
        const savedRank = savedLoraRank(dir);
        const hint =
          savedRank !== null && savedRank !== cfg.lora.rank
            ? ` (the checkpoint was saved with lora.rank ${savedRank}, this run has lora.rank ${cfg.lora.rank}: resume with the settings it was saved with)`
            : " (was it saved for another model or other LoRA settings?)";
        // Check every key and shape before copying anything.
        for (const [p, m] of mods) {
          for (const ab of ["A", "B"] as const) {
            const key = `base_model.model.${p}.lora_${ab}.weight`;
            const t = tensors.get(key);
            if (!t) throw new Error(`${where}: ${file} lacks '${key}' (were lora.target_modules or the model changed?)`);
            const want = (ab === "A" ? m.lora_A : m.lora_B).weight.shape;
            if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
              throw new Error(`${where}: tensor '${key}' has shape [${t.shape.join(", ")}] in the checkpoint but [${want.join(", ")}] in this run${hint}`);
            }
          }
        }
        if (tensors.size !== 2 * mods.length) throw new Error(`${where}: ${file} has ${tensors.size} tensors, this run's adapters need ${2 * mods.length} (were lora.target_modules changed?)`);
        for (const [p, m] of mods) {
          for (const ab of ["A", "B"] as const) (ab === "A" ? m.lora_A : m.lora_B).weight.copy_(tensors.get(`base_model.model.${p}.lora_${ab}.weight`)!);
        }
      } finally {
        dispose([...tensors.values()]);
      }
    } else {
      loadWeights(policy.model, dir);
    }
  });
}

/** Restores weights/adapter, optimizer, schedule and RNG from a checkpoint; returns its trainer state. Errors name the checkpoint (and the tensor and both shapes for a mismatch). */
export function restoreTrainingCheckpoint(ref: CheckpointRef, parts: CheckpointParts, kind: "sft" | "grpo"): TrainerState {
  const where = `resume from ${ref.path}`;
  const state = readJson<TrainerState>(path.join(ref.path, "trainer_state.json"));
  if (state.kind !== kind) throw new Error(`${where}: it is a ${state.kind} checkpoint, not ${kind}`);
  if (state.lora !== parts.policy.lora) throw new Error(`${where}: it was saved with lora.enabled ${state.lora} but this run has lora.enabled ${parts.policy.lora}`);
  readTrainedWeights(ref.path, parts.policy, parts.cfg, where);
  const opt = loadSafetensors(path.join(ref.path, "optimizer.safetensors"));
  try {
    parts.optimizer.loadState(opt, state.optimizer);
  } catch (e) {
    throw new Error(`${where}: optimizer state: ${(e as Error).message}`, { cause: e });
  } finally {
    dispose([...opt.values()]);
  }
  try {
    parts.scheduler.loadStateDict(state.scheduler);
  } catch (e) {
    throw new Error(`${where}: schedule: ${(e as Error).message}`, { cause: e });
  }
  const rng = loadSafetensors(path.join(ref.path, "rng.safetensors"));
  try {
    const global = rng.get("global");
    if (!global) throw new Error(`${where}: rng.safetensors has no global state`);
    setRngState(global);
    if (parts.sampler) {
      const st = rng.get("sampler");
      if (!st) throw new Error(`${where}: rng.safetensors has no sampler state`);
      parts.sampler.setState(st);
    }
  } finally {
    dispose([...rng.values()]);
  }
  return state;
}

/**
 * Writes the trained model as a complete HF folder at `dir` (LoRA merged into
 * the weights, tokenizer and processor files copied from the base folder),
 * and with LoRA also the adapter in PEFT format at `dir`-adapter. Both get
 * the model card (vlm_grpo.json: the prompt and categories trained with, so
 * predict and eval ask the same question; no thresholds, since the weights
 * are new).
 */
export async function saveFinalModel(policy: Policy, dir: string): Promise<void> {
  if (policy.lora) {
    saveAdapter(policy.model, `${dir}-adapter`, { baseModel: policy.modelDir });
    mergeAdapters(policy.model);
    try {
      await savePretrained(policy.model, dir, { copyFilesFrom: policy.modelDir });
    } finally {
      unmergeAdapters(policy.model);
    }
  } else {
    await savePretrained(policy.model, dir, { copyFilesFrom: policy.modelDir });
  }
  const card = makeModelCard(policy.prompt, { base_model: path.resolve(policy.modelDir), saved_at: new Date().toISOString() });
  writeModelCard(dir, card);
  if (policy.lora) writeModelCard(`${dir}-adapter`, card);
}

// ---- logging and signals --------------------------------------------------------------

export function openSinks(runDir: string): MetricSink {
  fs.mkdirSync(runDir, { recursive: true });
  return new MultiSink([new JsonlSink(path.join(runDir, "metrics.jsonl")), new TensorBoardSink(path.join(runDir, "tb"))]);
}

export function writeResolvedConfig(runDir: string, cfg: RunConfig, kind: string): void {
  fs.mkdirSync(runDir, { recursive: true });
  writeTextFileAtomic(path.join(runDir, `${kind}_config.yaml`), dumpConfig(cfg, { header: `vlm-grpo ${kind}: resolved config` }));
}

// Signals: see stop.ts.
export { runExitCode, SIGNAL_EXIT_CODES, type StopSignal, StopRequest } from "./stop.js";

/** Thrown when a loss or gradient turns NaN/Inf: the run stops, the last good checkpoint stays. */
export class NonFiniteLossError extends Error {}

export function seedEverything(seed: number): void {
  manualSeed(seed);
}
