// LoRA (low-rank adapters) on Linear layers, PEFT-compatible.
//
//   y = x W^T + b + scaling * B(A(dropout(x))),   scaling = alpha / r
//
// A LoraLinear takes a Linear's place in the tree (Module.setModule). It
// holds the base weight and bias under the same names ("weight", "bias"), so
// the model's base keys do not change, and adds "lora_A.weight" [r, in] and
// "lora_B.weight" [out, r]. B starts at zero (PEFT's default), so a fresh
// adapter leaves the model's outputs unchanged. Adapters can be switched off
// (the base weights then serve as GRPO's reference policy without a copy),
// merged into the base weight and unmerged.
import { F, Generator, noGrad, rand, type Tensor } from "../torch/index.js";
import { Linear } from "./linear.js";
import { Module } from "./module.js";

/**
 * Where the vision tower and the connector sit (module path prefixes). A
 * vision-language model declares them (its `moduleScopes`); their Linear
 * layers are adapted only when includeVision / includeConnector say so, and
 * then all of them.
 */
export interface LoraScopes {
  vision?: readonly string[];
  connector?: readonly string[];
}

/** What a model may declare for LoRA's defaults (VisionLanguageModel does). */
interface LoraDefaults {
  defaultLoraTargets?: readonly string[];
  moduleScopes?: LoraScopes;
}

export interface LoraOptions {
  /** Rank r of the update. Default 8. */
  rank?: number;
  /** Scale numerator: scaling = alpha / r. Default 16. */
  alpha?: number;
  /** Dropout on the adapter's input during training. Default 0.05. */
  dropout?: number;
  /**
   * Module names (last path component, PEFT's list form) to adapt in the
   * decoder. Default: the model's defaultLoraTargets.
   */
  targetModules?: readonly string[];
  /** Also adapt every Linear layer of the vision tower. Default false. */
  includeVision?: boolean;
  /** Also adapt every Linear layer of the connector. Default false. */
  includeConnector?: boolean;
  /** Vision tower / connector prefixes. Default: the model's moduleScopes. */
  scopes?: LoraScopes;
  /** Seed for A's initialization. Default 0. */
  seed?: number;
}

export interface ResolvedLoraOptions {
  rank: number;
  alpha: number;
  dropout: number;
  targetModules: string[];
  includeVision: boolean;
  includeConnector: boolean;
  scopes: { vision: readonly string[]; connector: readonly string[] };
  seed: number;
}

/** Fills defaults (from `model`'s declared LoRA defaults where the options are silent) and checks ranges. */
export function resolveLoraOptions(o: LoraOptions = {}, model?: Module): ResolvedLoraOptions {
  const declared = (model ?? {}) as LoraDefaults;
  const targets = o.targetModules ?? declared.defaultLoraTargets;
  if (!targets) throw new Error("lora: no targetModules given and the model declares no default LoRA targets");
  const scopes = o.scopes ?? declared.moduleScopes ?? {};
  const r: ResolvedLoraOptions = {
    rank: o.rank ?? 8,
    alpha: o.alpha ?? 16,
    dropout: o.dropout ?? 0.05,
    targetModules: [...targets],
    includeVision: o.includeVision ?? false,
    includeConnector: o.includeConnector ?? false,
    scopes: { vision: [...(scopes.vision ?? [])], connector: [...(scopes.connector ?? [])] },
    seed: o.seed ?? 0,
  };
  if (!Number.isInteger(r.rank) || r.rank < 1) throw new RangeError(`lora.rank must be a positive integer (got ${r.rank})`);
  if (!(r.alpha > 0)) throw new RangeError(`lora.alpha must be > 0 (got ${r.alpha})`);
  if (!(r.dropout >= 0 && r.dropout < 1)) throw new RangeError(`lora.dropout must be in [0, 1) (got ${r.dropout})`);
  if (r.targetModules.length === 0) throw new Error("lora.targetModules is empty");
  return r;
}

const under = (path: string, prefixes: readonly string[]) => prefixes.some((p) => path === p || path.startsWith(`${p}.`));

/** Whether the Linear at `path` is adapted under these options. */
export function isLoraTarget(path: string, o: ResolvedLoraOptions): boolean {
  const last = path.slice(path.lastIndexOf(".") + 1);
  // The connector first: it may sit inside the vision tower's tree (Qwen2-VL's model.visual.merger).
  if (under(path, o.scopes.connector)) return o.includeConnector;
  if (under(path, o.scopes.vision)) return o.includeVision;
  if (path === "lm_head" || path.endsWith(".lm_head")) return false;
  return o.targetModules.includes(last);
}

export class LoraLinear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly rank: number;
  readonly scaling: number;
  readonly dropoutP: number;
  lora_A: Linear;
  lora_B: Linear;
  /** The adapter contributes to forward (false: the base layer alone). */
  enabled = true;
  /** The update is folded into `weight` (forward then skips the adapter). */
  merged = false;

  constructor(base: Linear, o: ResolvedLoraOptions, seed: number) {
    super();
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.rank = o.rank;
    this.scaling = o.alpha / o.rank;
    this.dropoutP = o.dropout;
    const w = base.weight;
    this.addParameter("weight", w, false);
    if (w.requiresGrad) w.requiresGrad_(false);
    const b = base.bias;
    if (b) {
      this.addParameter("bias", b, false);
      if (b.requiresGrad) b.requiresGrad_(false);
    }
    const opts = { dtype: w.dtype, device: w.device, bias: false } as const;
    this.lora_A = this.addModule("lora_A", new Linear(this.inFeatures, this.rank, opts));
    this.lora_B = this.addModule("lora_B", new Linear(this.rank, this.outFeatures, opts));
    noGrad(() => {
      // kaiming_uniform_(a=sqrt(5)) as nn.Linear/PEFT: U(-1/sqrt(in), 1/sqrt(in)).
      const bound = 1 / Math.sqrt(this.inFeatures);
      const gen = seedGenerator(seed);
      this.lora_A.weight.copy_(rand([this.rank, this.inFeatures], { generator: gen, dtype: "float32" }).mul(2 * bound).sub(bound));
      this.lora_B.weight.zero_();
    });
    this.train(base.training);
  }

  get weight(): Tensor {
    return this.param("weight");
  }
  get bias(): Tensor | null {
    return this.paramOrNull("bias");
  }

  forward(x: Tensor): Tensor {
    const base = F.linear(x, this.weight, this.bias);
    if (!this.enabled || this.merged) return base;
    const h = this.training && this.dropoutP > 0 ? F.dropout(x, this.dropoutP, true) : x;
    return base.add(this.lora_B.forward(this.lora_A.forward(h)).mul(this.scaling));
  }

  /** scaling * B @ A, shaped like the base weight. */
  delta(): Tensor {
    return this.lora_B.weight.matmul(this.lora_A.weight).mul(this.scaling);
  }

  merge(): void {
    if (this.merged) return;
    noGrad(() => {
      const d = this.delta();
      this.weight.add_(d.to(this.weight.dtype));
      d.dispose();
    });
    this.merged = true;
  }

  unmerge(): void {
    if (!this.merged) return;
    noGrad(() => {
      const d = this.delta();
      this.weight.sub_(d.to(this.weight.dtype));
      d.dispose();
    });
    this.merged = false;
  }
}

function seedGenerator(seed: number): Generator {
  return new Generator(seed);
}

/** The LoraLinear modules of a tree with their paths. */
export function loraModules(model: Module): [string, LoraLinear][] {
  return model.namedModules().filter((e): e is [string, LoraLinear] => e[1] instanceof LoraLinear);
}

/**
 * Replaces every targeted Linear of `model` with a LoraLinear, freezes all
 * other parameters, and returns the adapted paths. Throws when nothing matched.
 */
export function applyLora(model: Module, options: LoraOptions = {}): { paths: string[]; options: ResolvedLoraOptions } {
  const o = resolveLoraOptions(options, model);
  if (loraModules(model).length) throw new Error("applyLora: the model already has LoRA adapters");
  const targets = model.namedModules().filter(([p, m]) => m instanceof Linear && isLoraTarget(p, o)) as [string, Linear][];
  if (targets.length === 0) {
    throw new Error(`applyLora: no Linear layer matches targetModules [${o.targetModules.join(", ")}] (includeVision=${o.includeVision}, includeConnector=${o.includeConnector})`);
  }
  const paths = targets.map(([p]) => p);
  applyLoraAt(model, paths, o);
  return { paths, options: o };
}

/**
 * Wraps exactly the Linear layers at `paths` (e.g. the modules named by a
 * saved adapter's keys) and freezes everything else.
 */
export function applyLoraAt(model: Module, paths: readonly string[], o: ResolvedLoraOptions): void {
  const linears = paths.map((p) => {
    const m = model.getModule(p);
    if (!(m instanceof Linear)) throw new Error(`applyLora: ${p} is a ${m.constructor.name}, not a Linear layer`);
    return m;
  });
  model.requiresGrad_(false);
  linears.forEach((lin, i) => model.setModule(paths[i], new LoraLinear(lin, o, o.seed * 100003 + i)));
  for (const [, m] of loraModules(model)) {
    m.lora_A.requiresGrad_(true);
    m.lora_B.requiresGrad_(true);
  }
}

/** Switches every adapter on or off. */
export function setAdaptersEnabled(model: Module, enabled: boolean): void {
  for (const [, m] of loraModules(model)) m.enabled = enabled;
}

/** Runs fn with adapters off (the base model), restoring their state afterwards, even on error. */
export function withAdaptersDisabled<T>(model: Module, fn: () => T): T {
  const mods = loraModules(model);
  const prev = mods.map(([, m]) => m.enabled);
  for (const [, m] of mods) m.enabled = false;
  try {
    return fn();
  } finally {
    mods.forEach(([, m], i) => (m.enabled = prev[i]));
  }
}

/** Folds every adapter into its base weight (forward then equals the adapted model at no extra cost). */
export function mergeAdapters(model: Module): void {
  for (const [, m] of loraModules(model)) m.merge();
}

export function unmergeAdapters(model: Module): void {
  for (const [, m] of loraModules(model)) m.unmerge();
}

/**
 * Merges the adapters and puts plain Linear layers back, leaving a model with
 * the base architecture (its state dict has the original keys only).
 */
export function mergeAndUnload(model: Module): void {
  for (const [p, m] of loraModules(model)) {
    m.merge();
    const lin = new Linear(m.inFeatures, m.outFeatures, { bias: false, weight: m.weight, dtype: m.weight.dtype, device: m.weight.device });
    if (m.bias) lin.addParameter("bias", m.bias);
    m.lora_A.dispose();
    m.lora_B.dispose();
    model.setModule(p, lin);
  }
  model.requiresGrad_(true);
}

/** The adapter tensors by model path ("...q_proj.lora_A.weight"). */
export function adapterStateDict(model: Module): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [p, m] of loraModules(model)) {
    out.set(`${p}.lora_A.weight`, m.lora_A.weight);
    out.set(`${p}.lora_B.weight`, m.lora_B.weight);
  }
  return out;
}

/** The trainable adapter parameters (for the optimizer). */
export function adapterParameters(model: Module): Tensor[] {
  return [...adapterStateDict(model).values()];
}

