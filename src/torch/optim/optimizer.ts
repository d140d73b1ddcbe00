// What every optimizer shares: parameter groups (each group's options
// override the defaults, as in torch.optim), per-parameter state tensors,
// zeroGrad, and state save/load in a form safetensors can hold: the state
// tensors under flat names plus a JSON description (step counts,
// hyperparameters, group structure), so a resumed run is bit-exact.
//
// Updates run as libtorch ops under noGrad, never as JS loops over elements.
// Where libtorch has them, the `_foreach_*` ops apply one update to a list of
// tensors in one call; on the CPU they loop over the same per-tensor kernels
// PyTorch's single-tensor optimizers call, so results match those bit for bit.
import { noGrad } from "../autograd.js";
import { zerosLike } from "../creation.js";
import { keep } from "../scope.js";
import { callInPlace, callTs, Tensor } from "../tensor.js";

/** Tensors by name, as saveSafetensors takes them and loadSafetensors gives them. */
export type StateTensorDict = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

/** One parameter group as the user gives it: its params plus options overriding the defaults. */
export type ParamGroupInput<O> = { params: readonly Tensor[] } & Partial<O>;

/** One parameter group with every option resolved; options (e.g. `lr`) may be changed between steps. */
export type ParamGroup<O> = { readonly params: readonly Tensor[] } & O;

/** The JSON half of an optimizer's saved state (the tensors are the other half). */
export interface OptimizerStateMeta {
  /** Layout version of this object. */
  format: typeof STATE_FORMAT;
  /** Optimizer class, e.g. "AdamW". */
  optimizer: string;
  /** Each group's parameter indices (numbered across groups, in order) and options. */
  groups: { params: number[]; options: Record<string, unknown> }[];
  /** Per-parameter state by index: the step count and the names of its state tensors. */
  state: Record<string, { step: number; tensors: string[] }>;
}

/** Saved optimizer state: tensors for safetensors plus JSON metadata. */
export interface OptimizerStateDict {
  tensors: Record<string, Tensor>;
  meta: OptimizerStateMeta;
}

export const STATE_FORMAT = "vlm-grpo.optimizer/1";

/** Per-parameter state: steps taken and named buffers (moments, momentum), owned by the optimizer. */
export interface ParamState {
  step: number;
  buffers: Record<string, Tensor>;
}

/** A parameter that has a gradient this step, with its index and state. */
export interface GradItem {
  index: number;
  param: Tensor;
  grad: Tensor;
}

/** Name of the safetensors entry holding buffer `buffer` of parameter `index`. */
export function stateTensorName(index: number, buffer: string): string {
  return `state.${index}.${buffer}`;
}

/** The entries of an options object whose value is not undefined (so `{ lr: undefined }` keeps the default). */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function cloneOptions<O extends object>(o: O): O {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = Array.isArray(v) ? [...v] : v;
  return out as O;
}

const shapeStr = (s: readonly number[]) => `[${s.join(", ")}]`;

export abstract class Optimizer<O extends { lr: number }> {
  /** The groups, in order; set `paramGroups[i].lr` (schedules do) to change a group's learning rate. */
  readonly paramGroups: ParamGroup<O>[];
  /** The options every group starts from. */
  readonly defaults: Readonly<O>;
  /** State by parameter index (numbered across groups, in order); undefined before a param's first step. */
  protected readonly state: (ParamState | undefined)[] = [];
  private readonly allParams: Tensor[] = [];
  private disposed = false;

  protected constructor(
    /** Class name, used in errors and saved metadata. */
    readonly name: string,
    params: readonly Tensor[] | readonly ParamGroupInput<O>[],
    defaults: O,
  ) {
    this.validateOptions(defaults, `${name}`);
    this.defaults = Object.freeze(cloneOptions(defaults));
    if (!Array.isArray(params) || params.length === 0) throw new Error(`${name}: expected a non-empty array of parameters or parameter groups`);
    const inputs: ParamGroupInput<O>[] = params[0] instanceof Tensor ? [{ params: params as Tensor[] } as unknown as ParamGroupInput<O>] : (params as ParamGroupInput<O>[]);
    const seen = new Set<Tensor>();
    this.paramGroups = inputs.map((g, gi) => {
      const where = `${name}: paramGroups[${gi}]`;
      if (typeof g !== "object" || g === null || !Array.isArray(g.params)) throw new Error(`${where}: expected { params: Tensor[], ...options }`);
      for (const key of Object.keys(g)) {
        if (key !== "params" && !(key in defaults)) throw new Error(`${where}: unknown option '${key}'; known: ${Object.keys(defaults).join(", ")}`);
      }
      g.params.forEach((p, pi) => {
        const what = `${where}.params[${pi}]`;
        if (!(p instanceof Tensor)) throw new Error(`${what}: expected a Tensor`);
        if (p.isDisposed) throw new Error(`${what}: the tensor was disposed`);
        if (!p.isFloatingPoint) throw new Error(`${what}: only floating-point tensors can be optimized, got ${p.dtype}`);
        if (!p.isLeaf) throw new Error(`${what}: can't optimize a non-leaf tensor (made by an op); pass the parameter itself`);
        if (seen.has(p)) throw new Error(`${what}: the same parameter appears more than once across the groups`);
        seen.add(p);
        this.allParams.push(p);
      });
      const { params: ps, ...overrides } = g;
      // Arrays (betas) are copied so that no two groups share one.
      const options = cloneOptions({ ...defaults, ...definedOnly(overrides) } as O);
      this.validateOptions(options, where);
      return { params: [...ps], ...options } as ParamGroup<O>;
    });
  }

  /** Checks one group's options; throws naming `where` and the option. */
  protected abstract validateOptions(options: O, where: string): void;

  /** Updates one group's parameters that have gradients (under noGrad, at least one item). */
  protected abstract updateGroup(group: ParamGroup<O>, items: GradItem[]): void;

  /** Buffer names a parameter of this group may have in saved state. */
  protected abstract bufferNames(group: ParamGroup<O>): readonly string[];

  /** All parameters, in group order (index i here is index i in saved state). */
  get params(): readonly Tensor[] {
    return this.allParams;
  }

  /** Steps taken by the parameter at `index` (0 before its first update). */
  stepCount(index: number): number {
    return this.state[index]?.step ?? 0;
  }

  protected assertLive(what: string): void {
    if (this.disposed) throw new Error(`${this.name}.${what}: the optimizer was disposed`);
  }

  /** One optimization step over every parameter that has a gradient (others are skipped). */
  step(): void {
    this.assertLive("step");
    noGrad(() => {
      let index = 0;
      for (const group of this.paramGroups) {
        const items: GradItem[] = [];
        try {
          for (const param of group.params) {
            const grad = param.grad;
            if (grad !== null) items.push({ index, param, grad });
            index++;
          }
          if (items.length > 0) this.updateGroup(group, items);
        } finally {
          for (const it of items) it.grad.dispose();
        }
      }
    });
  }

  /** Drops every parameter's gradient (setToNone, the default and PyTorch's), or zeroes it in place. */
  zeroGrad(setToNone = true): void {
    this.assertLive("zeroGrad");
    for (const p of this.allParams) {
      if (setToNone) {
        p.grad = null;
      } else {
        const g = p.grad;
        if (g !== null) {
          noGrad(() => g.zero_());
          g.dispose();
        }
      }
    }
  }

  /** Creates a zero buffer shaped like `p`, owned by the optimizer (no scope frees it). */
  protected newBuffer(p: Tensor): Tensor {
    return keep(zerosLike(p));
  }

  /**
   * The state tensors by name (`state.<param index>.<buffer>`), for
   * saveSafetensors. They are the optimizer's own tensors: save them, do not
   * dispose or modify them.
   */
  stateTensors(): Record<string, Tensor> {
    this.assertLive("stateTensors");
    const out: Record<string, Tensor> = {};
    this.state.forEach((st, i) => {
      if (!st) return;
      for (const [b, t] of Object.entries(st.buffers)) out[stateTensorName(i, b)] = t;
    });
    return out;
  }

  /** Step counts, hyperparameters and group structure, as JSON-safe data. */
  stateMeta(): OptimizerStateMeta {
    this.assertLive("stateMeta");
    let index = 0;
    const groups = this.paramGroups.map((g) => {
      const { params, ...options } = g;
      return { params: params.map(() => index++), options: JSON.parse(JSON.stringify(options)) as Record<string, unknown> };
    });
    const state: OptimizerStateMeta["state"] = {};
    this.state.forEach((st, i) => {
      if (st) state[String(i)] = { step: st.step, tensors: Object.keys(st.buffers) };
    });
    return { format: STATE_FORMAT, optimizer: this.name, groups, state };
  }

  /** Tensors and metadata together (see stateTensors and stateMeta). */
  stateDict(): OptimizerStateDict {
    return { tensors: this.stateTensors(), meta: this.stateMeta() };
  }

  /** Inverse of stateDict(). */
  loadStateDict(sd: OptimizerStateDict): void {
    this.loadState(sd.tensors, sd.meta);
  }

  /**
   * Restores state saved by stateTensors()/stateMeta() into an optimizer over
   * the same parameters (same groups, shapes and dtypes): step counts, group
   * options (learning rates included) and copies of the buffers (the given
   * tensors stay the caller's). Everything is checked before anything changes;
   * a mismatch throws naming the key.
   */
  loadState(tensors: StateTensorDict, meta: OptimizerStateMeta): void {
    this.assertLive("loadState");
    const where = `${this.name}.loadState`;
    const get = (k: string): Tensor | undefined => (tensors instanceof Map ? tensors.get(k) : (tensors as Record<string, Tensor>)[k]);
    const names = tensors instanceof Map ? [...tensors.keys()] : Object.keys(tensors);
    if (typeof meta !== "object" || meta === null) throw new Error(`${where}: meta must be the object stateMeta() returned`);
    if (meta.format !== STATE_FORMAT) throw new Error(`${where}: meta.format is ${JSON.stringify(meta.format)}, expected "${STATE_FORMAT}"`);
    if (meta.optimizer !== this.name) throw new Error(`${where}: the state was saved by ${meta.optimizer}, not ${this.name}`);
    if (!Array.isArray(meta.groups) || meta.groups.length !== this.paramGroups.length) {
      throw new Error(`${where}: meta.groups has ${meta.groups?.length} groups, this optimizer has ${this.paramGroups.length}`);
    }
    // Group structure and options.
    let index = 0;
    const newOptions: O[] = [];
    meta.groups.forEach((mg, gi) => {
      const group = this.paramGroups[gi];
      const expected = group.params.map(() => index++);
      if (!Array.isArray(mg.params) || mg.params.length !== expected.length || mg.params.some((p, i) => p !== expected[i])) {
        throw new Error(`${where}: meta.groups[${gi}].params is [${mg.params}], expected [${expected}] (${group.params.length} parameters)`);
      }
      const opts = cloneOptions(this.defaults) as Record<string, unknown>;
      for (const [k, v] of Object.entries(mg.options ?? {})) {
        if (!(k in this.defaults)) throw new Error(`${where}: meta.groups[${gi}].options has unknown option '${k}'`);
        opts[k] = Array.isArray(v) ? [...v] : v;
      }
      this.validateOptions(opts as O, `${where}: meta.groups[${gi}].options`);
      newOptions.push(opts as O);
    });
    // Per-parameter state: every named tensor present, shaped and typed like its parameter.
    const used = new Set<string>();
    const plan: { index: number; step: number; buffers: [string, Tensor][] }[] = [];
    for (const [key, entry] of Object.entries(meta.state ?? {})) {
      const i = Number(key);
      if (!Number.isInteger(i) || i < 0 || i >= this.allParams.length) throw new Error(`${where}: meta.state has parameter index '${key}', expected 0..${this.allParams.length - 1}`);
      if (!Number.isInteger(entry.step) || entry.step < 0) throw new Error(`${where}: meta.state['${key}'].step must be a non-negative integer, got ${entry.step}`);
      const group = this.groupOf(i);
      const allowed = this.bufferNames(group);
      const p = this.allParams[i];
      const buffers: [string, Tensor][] = [];
      for (const b of entry.tensors ?? []) {
        const name = stateTensorName(i, b);
        if (!allowed.includes(b)) throw new Error(`${where}: '${name}': ${this.name} with these options keeps no '${b}' (expected one of: ${allowed.join(", ") || "none"})`);
        const t = get(name);
        if (!t) throw new Error(`${where}: state tensor '${name}' is missing`);
        if (t.dtype !== p.dtype) throw new Error(`${where}: '${name}' has dtype ${t.dtype}, but parameter ${i} is ${p.dtype}`);
        if (shapeStr(t.shape) !== shapeStr(p.shape)) throw new Error(`${where}: '${name}' has shape ${shapeStr(t.shape)}, but parameter ${i} has shape ${shapeStr(p.shape)}`);
        used.add(name);
        buffers.push([b, t]);
      }
      plan.push({ index: i, step: entry.step, buffers });
    }
    const unexpected = names.filter((n) => !used.has(n));
    if (unexpected.length > 0) throw new Error(`${where}: unexpected state tensor(s) not described by meta.state: ${unexpected.slice(0, 5).join(", ")}${unexpected.length > 5 ? ", ..." : ""}`);
    // Commit.
    this.freeState();
    this.paramGroups.forEach((g, gi) => Object.assign(g, newOptions[gi]));
    for (const { index: i, step, buffers } of plan) {
      const p = this.allParams[i];
      const st: ParamState = { step, buffers: {} };
      for (const [b, t] of buffers) st.buffers[b] = keep(noGrad(() => (t.device === p.device ? t.clone() : t.to(p.device))));
      this.state[i] = st;
    }
  }

  private groupOf(index: number): ParamGroup<O> {
    let n = 0;
    for (const g of this.paramGroups) {
      n += g.params.length;
      if (index < n) return g;
    }
    throw new Error(`${this.name}: parameter index ${index} out of range`);
  }

  private freeState(): void {
    for (const st of this.state) {
      if (st) for (const t of Object.values(st.buffers)) t.dispose();
    }
    this.state.length = 0;
  }

  /** Frees the state tensors; the optimizer cannot be used afterwards (parameters are untouched). */
  dispose(): void {
    if (this.disposed) return;
    this.freeState();
    this.disposed = true;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

// ---- list ops -------------------------------------------------------------
// Thin wrappers over aten::_foreach_* (present in libtorch >= 1.7). Scalars
// go across as floats, as Python floats do in torch.optim.

const f = (x: number) => ({ float: x });

/** xs[i] *= s */
export function foreachMul_(xs: Tensor[], s: number): void {
  callInPlace("aten::_foreach_mul_.Scalar", xs, f(s));
}
/** xs[i] += alpha * ys[i] */
export function foreachAddList_(xs: Tensor[], ys: Tensor[], alpha: number): void {
  callInPlace("aten::_foreach_add_.List", xs, ys, f(alpha));
}
/** xs[i] + alpha * ys[i], as new tensors */
export function foreachAddList(xs: Tensor[], ys: Tensor[], alpha: number): Tensor[] {
  return callTs("aten::_foreach_add.List", xs, ys, f(alpha));
}
/** xs[i] += s */
export function foreachAddScalar_(xs: Tensor[], s: number): void {
  callInPlace("aten::_foreach_add_.Scalar", xs, f(s));
}
/** xs[i] /= s */
export function foreachDiv_(xs: Tensor[], s: number): void {
  callInPlace("aten::_foreach_div_.Scalar", xs, f(s));
}
/** xs[i] += value * a[i] * b[i] */
export function foreachAddcmul_(xs: Tensor[], a: Tensor[], b: Tensor[], value: number): void {
  callInPlace("aten::_foreach_addcmul_.Scalar", xs, a, b, f(value));
}
/** xs[i] += value * a[i] / b[i] */
export function foreachAddcdiv_(xs: Tensor[], a: Tensor[], b: Tensor[], value: number): void {
  callInPlace("aten::_foreach_addcdiv_.Scalar", xs, a, b, f(value));
}
/** sqrt(xs[i]), as new tensors */
export function foreachSqrt(xs: Tensor[]): Tensor[] {
  return callTs("aten::_foreach_sqrt", xs);
}
/** xs[i] = max(xs[i], ys[i]) */
export function foreachMaximum_(xs: Tensor[], ys: Tensor[]): void {
  callInPlace("aten::_foreach_maximum_.List", xs, ys);
}
/** xs[i] *= ys[i] (ys may repeat one 0-d tensor) */
export function foreachMulList_(xs: Tensor[], ys: Tensor[]): void {
  callInPlace("aten::_foreach_mul_.List", xs, ys);
}
/** p-norm of each xs[i], as new 0-d tensors */
export function foreachNorm(xs: Tensor[], p: number): Tensor[] {
  return callTs("aten::_foreach_norm.Scalar", xs, f(p));
}

/**
 * Largest number of parameter elements one list op updates. Updates that
 * make temporaries (AdamW's denominators, SGD's decayed gradients) run in
 * chunks this size, small enough for the allocator to reuse the
 * temporaries from step to step instead of mapping fresh pages. Measured on
 * the CPU with 37 parameters of 384K elements: ~20 ms per AdamW step with
 * 2^20, ~36 ms with all 14M elements in one chunk (PyTorch's per-tensor
 * loop: ~25 ms). Tiny parameters (LoRA) still share one call.
 */
export const FOREACH_CHUNK_ELEMENTS = 2 ** 20;

/**
 * Splits items into runs whose tensors total at most `maxElements`, so that
 * list ops making temporaries (e.g. AdamW's denominators) never hold more
 * than that many extra elements at once.
 */
export function chunkByElements<T extends { param: Tensor }>(items: T[], maxElements: number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let n = 0;
  for (const it of items) {
    const k = it.param.numel;
    if (cur.length > 0 && n + k > maxElements) {
      out.push(cur);
      cur = [];
      n = 0;
    }
    cur.push(it);
    n += k;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** Checks a number option: finite and within [min, max) or [min, max]. */
export function checkNumber(value: unknown, name: string, where: string, min: number, max = Infinity, maxInclusive = true): number {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new Error(`${where}: ${name} must be a finite number, got ${JSON.stringify(value)}`);
  if (value < min || value > max || (!maxInclusive && value === max)) {
    throw new Error(`${where}: ${name} must be in [${min}, ${max}${maxInclusive ? "]" : ")"}, got ${value}`);
  }
  return value;
}
