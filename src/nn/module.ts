// Module: a tree of named child modules and parameters, addressed by the
// dotted paths that Hugging Face checkpoints use ("model.layers.0.mlp.up_proj.weight").
//
// A subclass registers its parts in the constructor:
//
//   this.q_proj = this.addModule("q_proj", new Linear(64, 64));
//   this.addParameter("weight", ones([64]));
//
// and `forward` reads them through the fields (this.q_proj.forward(x)), so that
// setModule("q_proj", wrapper) (LoRA) replaces what forward calls. Parameters
// live in a per-module map (read them with `param(name)` or a getter); they are
// kept out of scopes and freed by dispose().
import { type Device, type DType, dispose as disposeValue, isFloatingDType, keep, noGrad, Tensor } from "../torch/index.js";

/** Options of Module.loadStateDict. */
export interface LoadStateDictOptions {
  /** Every expected key must be present and no other key may be (default true). */
  strict?: boolean;
}

/** What loadStateDict did: keys copied, and (non-strict only) keys missing or unexpected. */
export interface LoadStateDictResult {
  loaded: string[];
  missing: string[];
  unexpected: string[];
}

/** Tensors by path: a Map or a plain object. */
export type StateDictInput = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

const entriesOf = (sd: StateDictInput): [string, Tensor][] => (sd instanceof Map ? [...sd.entries()] : Object.entries(sd as Record<string, Tensor>));

const shapeStr = (s: readonly number[]) => `[${s.join(", ")}]`;

/**
 * Lists every problem of a key set against the expected one, in one message:
 * missing, unexpected and mis-shaped keys. Returns null when there is none.
 * `where` names the model or file being loaded.
 */
export function describeKeyMismatch(
  where: string,
  expected: ReadonlyMap<string, readonly number[]>,
  given: ReadonlyMap<string, readonly number[]>,
  strict = true,
): { message: string | null; missing: string[]; unexpected: string[] } {
  const missing = [...expected.keys()].filter((k) => !given.has(k));
  const unexpected = [...given.keys()].filter((k) => !expected.has(k));
  const misshaped: string[] = [];
  for (const [k, shape] of given) {
    const want = expected.get(k);
    if (want && (want.length !== shape.length || want.some((d, i) => d !== shape[i]))) {
      misshaped.push(`'${k}': expected ${shapeStr(want)}, got ${shapeStr(shape)}`);
    }
  }
  const parts: string[] = [];
  const list = (xs: string[]) => xs.slice(0, 20).map((x) => `'${x}'`).join(", ") + (xs.length > 20 ? `, ... (${xs.length} in all)` : "");
  if (strict && missing.length) parts.push(`missing keys: ${list(missing)}`);
  if (strict && unexpected.length) parts.push(`unexpected keys: ${list(unexpected)}`);
  if (misshaped.length) parts.push(`mis-shaped keys: ${misshaped.slice(0, 20).join("; ")}${misshaped.length > 20 ? ` ... (${misshaped.length} in all)` : ""}`);
  return { message: parts.length ? `${where}: ${parts.join("; ")}` : null, missing, unexpected };
}

export class Module {
  /** Training mode (dropout on); set by train()/eval(). */
  training = true;
  /** @internal parameters of this module, in registration order. */
  private readonly _params = new Map<string, Tensor>();
  /** @internal child modules, in registration order. */
  private readonly _children = new Map<string, Module>();

  // ---- registration --------------------------------------------------------

  /** Registers a child module under `name` and returns it (assign it to a field of the same name). */
  protected addModule<M extends Module>(name: string, module: M): M {
    if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`Module.addModule: '${name}' is not a valid child name`);
    this._children.set(name, module);
    return module;
  }

  /**
   * Registers (or replaces) a parameter. The tensor is kept out of scopes and
   * set to require grad unless `requiresGrad` is false or it is not floating point.
   */
  addParameter(name: string, t: Tensor, requiresGrad = true): Tensor {
    if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`Module.addParameter: '${name}' is not a valid parameter name`);
    keep(t);
    if (requiresGrad && isFloatingDType(t.dtype) && !t.requiresGrad) t.requiresGrad_(true);
    this._params.set(name, t);
    return t;
  }

  /** This module's own parameter `name` (throws when absent). */
  param(name: string): Tensor {
    const t = this._params.get(name);
    if (!t) throw new Error(`${this.constructor.name}: no parameter '${name}'`);
    return t;
  }

  /** This module's own parameter `name`, or null. */
  paramOrNull(name: string): Tensor | null {
    return this._params.get(name) ?? null;
  }

  /** Direct children, in registration order. */
  children(): [string, Module][] {
    return [...this._children.entries()];
  }

  /** Direct parameters, in registration order. */
  ownParameters(): [string, Tensor][] {
    return [...this._params.entries()];
  }

  // ---- traversal ------------------------------------------------------------

  /** Every module of the tree with its dotted path ("" for this one), depth first. */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this._children) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  /**
   * Every parameter with its dotted path, depth first in registration order.
   * A tensor reachable by two paths (tied weights) is listed once, under the
   * first path, as torch.nn.Module.named_parameters does.
   */
  namedParameters(prefix = ""): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, t] of m._params) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([path ? `${path}.${name}` : name, t]);
      }
    }
    return out;
  }

  /** Every parameter path, tied aliases included (what a strict loader may skip). */
  allParameterPaths(): string[] {
    const out: string[] = [];
    for (const [path, m] of this.namedModules()) for (const name of m._params.keys()) out.push(path ? `${path}.${name}` : name);
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Number of parameter elements (tied tensors counted once). */
  numParameters(): number {
    return this.parameters().reduce((s, t) => s + t.numel, 0);
  }

  /** The module at a dotted path ("" is this one). Throws naming the first missing part. */
  getModule(path: string): Module {
    if (path === "") return this;
    let m: Module = this;
    const parts = path.split(".");
    for (let i = 0; i < parts.length; i++) {
      const next = m._children.get(parts[i]);
      if (!next) {
        const at = parts.slice(0, i).join(".") || "<root>";
        throw new Error(`getModule('${path}'): ${at} (${m.constructor.name}) has no child '${parts[i]}'; children: ${[...m._children.keys()].join(", ") || "(none)"}`);
      }
      m = next;
    }
    return m;
  }

  /** Replaces the module at a dotted path, updating the parent's field so forward uses the new one. */
  setModule(path: string, module: Module): void {
    const dot = path.lastIndexOf(".");
    const parent = this.getModule(dot < 0 ? "" : path.slice(0, dot));
    const name = dot < 0 ? path : path.slice(dot + 1);
    if (!parent._children.has(name)) throw new Error(`setModule('${path}'): ${parent.constructor.name} has no child '${name}'`);
    parent.replaceChild(name, module);
  }

  /** @internal Swaps a direct child; subclasses that hold children outside fields (ModuleList) override. */
  protected replaceChild(name: string, module: Module): void {
    this._children.set(name, module);
    if (Object.prototype.hasOwnProperty.call(this, name)) (this as unknown as Record<string, unknown>)[name] = module;
  }

  /** The parameter at a dotted path. */
  getParameter(path: string): Tensor {
    const dot = path.lastIndexOf(".");
    const m = this.getModule(dot < 0 ? "" : path.slice(0, dot));
    return m.param(dot < 0 ? path : path.slice(dot + 1));
  }

  // ---- state ----------------------------------------------------------------

  /** Parameters by path (tied aliases once), the tensors themselves (not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters());
  }

  /**
   * Copies tensors into the parameters (in place, so optimizers keep their
   * references; dtype and device are converted by the copy). Keys that are
   * tied aliases of another parameter ("lm_head.weight" when tied) are skipped.
   * With strict (default), one error names every missing, unexpected and
   * mis-shaped key, and nothing is copied.
   */
  loadStateDict(tensors: StateDictInput, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const params = this.stateDict();
    const aliases = new Set(this.allParameterPaths().filter((p) => !params.has(p)));
    const given = new Map<string, Tensor>();
    for (const [k, t] of entriesOf(tensors)) if (!aliases.has(k)) given.set(k, t);
    const expectedShapes = new Map([...params].map(([k, t]) => [k, t.shape] as [string, number[]]));
    const givenShapes = new Map([...given].map(([k, t]) => [k, t.shape] as [string, number[]]));
    const check = describeKeyMismatch(`loadStateDict (${this.constructor.name})`, expectedShapes, givenShapes, strict);
    if (check.message) throw new Error(check.message);
    const loaded: string[] = [];
    noGrad(() => {
      for (const [k, t] of given) {
        const p = params.get(k);
        if (!p) continue;
        p.copy_(t);
        loaded.push(k);
      }
    });
    return { loaded, missing: check.missing, unexpected: check.unexpected };
  }

  // ---- modes, dtype, device -----------------------------------------------------

  /** Sets training mode on this module and every descendant. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Sets requiresGrad on every parameter (false freezes the module). */
  requiresGrad_(flag = true): this {
    for (const t of this.parameters()) if (isFloatingDType(t.dtype)) t.requiresGrad_(flag);
    return this;
  }

  /**
   * Converts floating-point parameters to `dtype` and/or moves every parameter
   * to `device`. Parameters are replaced by new tensors (the old ones are
   * freed); tied parameters stay tied; requiresGrad is kept.
   */
  to(opts: { dtype?: DType; device?: Device }): this {
    const { dtype, device } = opts;
    if (dtype !== undefined && !isFloatingDType(dtype)) throw new Error(`Module.to: dtype must be floating point, got ${dtype}`);
    const replaced = new Map<Tensor, Tensor>();
    const convert = (t: Tensor): Tensor => {
      const wantDType = dtype !== undefined && isFloatingDType(t.dtype) ? dtype : t.dtype;
      const wantDevice = device ?? t.device;
      if (wantDType === t.dtype && wantDevice === t.device) return t;
      const grad = t.requiresGrad;
      const c = noGrad(() => (wantDevice === t.device ? t.to(wantDType) : t.to(wantDevice, { dtype: wantDType })));
      keep(c);
      if (grad) c.requiresGrad_(true);
      return c;
    };
    for (const [, m] of this.namedModules()) {
      for (const [name, t] of m._params) {
        let c = replaced.get(t);
        if (!c) {
          c = convert(t);
          replaced.set(t, c);
        }
        m._params.set(name, c);
      }
    }
    for (const [old, c] of replaced) if (old !== c) old.dispose();
    return this;
  }

  /** Frees every parameter of the tree (and each module's other tensors, see onDispose). The module is unusable afterwards. */
  dispose(): void {
    const all = new Set<Tensor>();
    for (const [, m] of this.namedModules()) {
      for (const t of m._params.values()) all.add(t);
      m._params.clear();
      m.onDispose();
    }
    disposeValue([...all]);
  }

  /** Hook for tensors a module holds besides parameters (caches, buffers); called by dispose(). */
  protected onDispose(): void {}
}

/** An indexed list of modules ("layers.0", "layers.1", ...). */
export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }

  push(m: M): void {
    this.addModule(String(this.items.length), m);
    this.items.push(m);
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items[i];
    if (!m) throw new RangeError(`ModuleList: index ${i} out of range (length ${this.items.length})`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }

  protected override replaceChild(name: string, module: Module): void {
    super.replaceChild(name, module);
    this.items[Number(name)] = module as M;
  }
}
