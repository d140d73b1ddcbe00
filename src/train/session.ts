// What SFT and GRPO share: loading the policy (model, tokenizer, image
// processor, LoRA), the data splits, optimizer and schedule, checkpoints with
// exact resume, the final model folder, metric sinks and Ctrl-C handling.
import fs from "node:fs";
import path from "node:path";
import { dumpConfig } from "../config/load.js";
import { resolvePromptConfig, type PromptConfig } from "../data/prompt.js";
import { assignSplits, examplesOfSplit, formatBadRows, loadDataset } from "../data/index.js";
import type { Example } from "../data/types.js";
import { writeTextFileAtomic } from "../io/atomic.js";
import { readProcessorConfig } from "../io/image_processor_config.js";
import { loadSafetensors, saveSafetensors } from "../io/safetensors.js";
import { HFTokenizer } from "../io/tokenizer.js";
import { Idefics3ForConditionalGeneration } from "../models/idefics3.js";
import { loadPretrained, loadWeights, savePretrained } from "../models/load.js";
import { saveAdapter } from "../models/peft.js";
import { applyLora, loraModules, mergeAdapters, unmergeAdapters } from "../nn/lora.js";
import { dispose, type Generator, getRngState, manualSeed, noGrad, setNumThreads, setRngState, type Tensor } from "../torch/index.js";
import { AdamW, LRScheduler } from "../torch/optim/index.js";
import { type CheckpointRef, readJson, saveCheckpoint } from "./checkpoint.js";
import type { RunConfig } from "./configs.js";
import { PromptEncoder } from "./encode.js";
import { JsonlSink } from "./sinks/jsonl.js";
import { type MetricSink, MultiSink } from "./sinks/multi.js";
import { TensorBoardSink } from "./sinks/tensorboard.js";

export interface Policy {
  model: Idefics3ForConditionalGeneration;
  tokenizer: HFTokenizer;
  encoder: PromptEncoder;
  prompt: PromptConfig;
  modelDir: string;
  /** LoRA adapters are trained (else full fine-tuning). */
  lora: boolean;
  /** The parameters the optimizer updates. */
  trainable: Tensor[];
  padTokenId: number;
  dispose(): void;
}

export function applyThreads(cfg: RunConfig): void {
  if (cfg.threads) setNumThreads(cfg.threads);
}

/** Loads the model folder and prepares it for training (LoRA or full, frozen vision). */
export async function loadPolicy(cfg: RunConfig, modelDir: string, opts: { train: boolean; freezeVision?: boolean; lora?: boolean } = { train: true }): Promise<Policy> {
  if (!modelDir) throw new Error("no model folder given (config key `model` or --model)");
  if (!fs.existsSync(path.join(modelDir, "config.json"))) throw new Error(`model folder ${modelDir} has no config.json`);
  const { model } = await loadPretrained(modelDir, { dtype: cfg.dtype, device: cfg.device as never });
  if (!(model instanceof Idefics3ForConditionalGeneration)) {
    model.dispose();
    throw new Error(`${modelDir}: vlm-grpo trains vision-language models (model_type idefics3); this folder holds a text-only model`);
  }
  const tokenizer = await HFTokenizer.fromDir(modelDir);
  const processor = readProcessorConfig(modelDir);
  const prompt = resolvePromptConfig({
    systemPrompt: cfg.prompt.system_prompt,
    userPrompt: cfg.prompt.user_prompt,
    categories: cfg.data.categories,
    allowThink: cfg.prompt.allow_think,
  });
  const encoder = new PromptEncoder({ tokenizer, processor, imageSeqLen: model.config.imageSeqLen, prompt });
  const useLora = opts.train && (opts.lora ?? cfg.lora.enabled);
  if (useLora) {
    applyLora(model, {
      rank: cfg.lora.rank,
      alpha: cfg.lora.alpha,
      dropout: cfg.lora.dropout,
      targetModules: cfg.lora.target_modules,
      includeVision: cfg.lora.include_vision,
      includeConnector: cfg.lora.include_connector,
      seed: cfg.seed,
    });
  } else if (opts.train) {
    model.requiresGrad_(true);
    if (opts.freezeVision) model.model.vision_model.requiresGrad_(false);
  } else {
    model.requiresGrad_(false);
  }
  model.train(opts.train);
  const padTokenId = tokenizer.padTokenId ?? tokenizer.eosTokenId;
  if (padTokenId === undefined) throw new Error(`${modelDir}: the tokenizer has neither a pad nor an EOS token`);
  return {
    model,
    tokenizer,
    encoder,
    prompt,
    modelDir,
    lora: useLora,
    trainable: opts.train ? model.parameters().filter((t) => t.requiresGrad) : [],
    padTokenId,
    dispose() {
      encoder.dispose();
      model.dispose();
    },
  };
}

export interface Splits {
  train: Example[];
  val: Example[];
  test: Example[];
  categories: string[];
  dropped: number;
}

/** Loads and validates the dataset and cuts the stratified splits. */
export async function loadSplits(cfg: RunConfig, log: (line: string) => void = () => {}): Promise<Splits> {
  if (!cfg.data.path) throw new Error("no dataset given (config key data.path or --data.path)");
  const ds = await loadDataset(cfg.data.path, {
    categories: cfg.data.categories,
    onBadRow: cfg.data.on_bad_row,
    format: cfg.data.format,
  });
  if (ds.dropped.length) {
    log(`data: skipped ${ds.dropped.length} bad row(s):\n${formatBadRows(ds.dropped)}`);
  }
  const fr = { train: Math.max(0, 1 - cfg.data.val_fraction - cfg.data.test_fraction), val: cfg.data.val_fraction, test: cfg.data.test_fraction };
  const withSplits = assignSplits(ds.examples, { seed: cfg.data.split_seed, fractions: fr });
  return {
    train: examplesOfSplit(withSplits, "train"),
    val: examplesOfSplit(withSplits, "val"),
    test: examplesOfSplit(withSplits, "test"),
    categories: [...cfg.data.categories],
    dropped: ds.dropped.length,
  };
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
}

/** Saves a resumable checkpoint (atomic); returns its folder. */
export function saveTrainingCheckpoint(runDir: string, step: number, parts: CheckpointParts, kind: "sft" | "grpo", position: Record<string, number>, metrics?: Record<string, number>): string {
  const { policy, optimizer, scheduler, sampler, cfg } = parts;
  return saveCheckpoint(
    runDir,
    step,
    (dir) => {
      if (policy.lora) {
        saveAdapter(policy.model, path.join(dir, "adapter"), { baseModel: policy.modelDir });
      } else {
        saveSafetensors(path.join(dir, "model.safetensors"), policy.model.stateDict(), { format: "pt" });
      }
      saveSafetensors(path.join(dir, "optimizer.safetensors"), optimizer.stateTensors());
      const rng: Record<string, Tensor> = { global: getRngState() };
      if (sampler) rng.sampler = sampler.getState();
      saveSafetensors(path.join(dir, "rng.safetensors"), rng);
      dispose(Object.values(rng));
      const state: TrainerState = { kind, step, position, scheduler: scheduler.stateDict(), optimizer: optimizer.stateMeta(), lora: policy.lora, metrics };
      fs.writeFileSync(path.join(dir, "trainer_state.json"), JSON.stringify(state, null, 1) + "\n");
      fs.writeFileSync(path.join(dir, "config.yaml"), dumpConfig(cfg, { header: `vlm-grpo ${kind} run config (resolved)` }));
    },
    { keepLast: kind === "sft" ? cfg.sft.keep_last : cfg.grpo.keep_last },
  );
}

/** Restores weights/adapter, optimizer, schedule and RNG from a checkpoint; returns its trainer state. */
export function restoreTrainingCheckpoint(ref: CheckpointRef, parts: CheckpointParts, kind: "sft" | "grpo"): TrainerState {
  const state = readJson<TrainerState>(path.join(ref.path, "trainer_state.json"));
  if (state.kind !== kind) throw new Error(`resume: ${ref.path} is a ${state.kind} checkpoint, not ${kind}`);
  if (state.lora !== parts.policy.lora) throw new Error(`resume: ${ref.path} was saved with lora=${state.lora} but this run has lora=${parts.policy.lora}`);
  noGrad(() => {
    if (parts.policy.lora) {
      const file = path.join(ref.path, "adapter", "adapter_model.safetensors");
      const tensors = loadSafetensors(file);
      try {
        const mods = loraModules(parts.policy.model);
        for (const [p, m] of mods) {
          for (const ab of ["A", "B"] as const) {
            const key = `base_model.model.${p}.lora_${ab}.weight`;
            const t = tensors.get(key);
            if (!t) throw new Error(`resume: ${file} lacks '${key}' (was the LoRA config changed?)`);
            (ab === "A" ? m.lora_A : m.lora_B).weight.copy_(t);
          }
        }
        if (tensors.size !== 2 * mods.length) throw new Error(`resume: ${file} has ${tensors.size} tensors, this run's adapters need ${2 * mods.length}`);
      } finally {
        dispose([...tensors.values()]);
      }
    } else {
      loadWeights(parts.policy.model, ref.path);
    }
  });
  const opt = loadSafetensors(path.join(ref.path, "optimizer.safetensors"));
  try {
    parts.optimizer.loadState(opt, state.optimizer);
  } finally {
    dispose([...opt.values()]);
  }
  parts.scheduler.loadStateDict(state.scheduler);
  const rng = loadSafetensors(path.join(ref.path, "rng.safetensors"));
  try {
    setRngState(rng.get("global")!);
    if (parts.sampler) {
      const st = rng.get("sampler");
      if (!st) throw new Error(`resume: ${ref.path}/rng.safetensors has no sampler state`);
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
 * and with LoRA also the adapter in PEFT format at `dir`-adapter.
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

/** Ctrl-C (SIGINT/SIGTERM): the loop finishes its step, saves a checkpoint and returns. A second Ctrl-C exits at once. */
export class StopRequest {
  requested = false;
  private readonly handler = (sig: NodeJS.Signals) => {
    if (this.requested) process.exit(130);
    this.requested = true;
    process.stderr.write(`\n${sig}: finishing the current step, then saving a checkpoint (press Ctrl-C again to quit now)\n`);
  };
  constructor() {
    process.on("SIGINT", this.handler);
    process.on("SIGTERM", this.handler);
  }
  dispose(): void {
    process.off("SIGINT", this.handler);
    process.off("SIGTERM", this.handler);
  }
}

/** Thrown when a loss or gradient turns NaN/Inf: the run stops, the last good checkpoint stays. */
export class NonFiniteLossError extends Error {}

export function seedEverything(seed: number): void {
  manualSeed(seed);
}
