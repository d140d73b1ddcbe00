// Deterministic memory release. Tensors live in libtorch; JS holds handles.
// A scope (tidy) releases every tensor made inside it except those it
// returns or that were kept; a finalizer in the addon is only a safety net.
//
//   const loss = tidy(() => model.forward(x).pow(2).mean()); // intermediates freed
//   const w = keep(randn([4, 4]));                          // survives every scope

/** What a scope needs of a tensor. */
export interface ScopedTensor {
  dispose(): void;
  readonly isDisposed: boolean;
  /** @internal the scope that owns the tensor, or null once kept or untracked. */
  _scope: Scope | null;
}

export class Scope {
  readonly tensors = new Set<ScopedTensor>();
  constructor(readonly name: string) {}

  /** Frees every tensor still owned by this scope. */
  releaseAll(except?: Set<ScopedTensor>): void {
    for (const t of this.tensors) {
      if (except?.has(t)) continue;
      t._scope = null;
      t.dispose();
    }
    this.tensors.clear();
  }
}

const stack: Scope[] = [];

/** @internal Registers a new tensor with the innermost scope, if any. */
export function track(t: ScopedTensor): void {
  const scope = stack[stack.length - 1];
  if (scope) {
    scope.tensors.add(t);
    t._scope = scope;
  }
}

/** Marks a tensor as owned by nobody: no scope frees it; dispose it yourself. */
export function keep<T extends ScopedTensor>(t: T): T {
  if (t._scope) {
    t._scope.tensors.delete(t);
    t._scope = null;
  }
  return t;
}

/** Number of scopes currently open (for tests). */
export function scopeDepth(): number {
  return stack.length;
}

const TENSOR_BRAND = Symbol.for("vlm-grpo.tensor");
export { TENSOR_BRAND };

function isScopedTensor(x: unknown): x is ScopedTensor {
  return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[TENSOR_BRAND] === true;
}

/** Collects the tensors inside a returned value (tensor, array, Map, plain object). */
export function collectTensors(value: unknown, out = new Set<ScopedTensor>(), seen = new Set<unknown>()): Set<ScopedTensor> {
  if (value === null || typeof value !== "object" || seen.has(value)) return out;
  seen.add(value);
  if (isScopedTensor(value)) {
    out.add(value);
    return out;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, out, seen);
  } else if (value instanceof Map) {
    for (const v of value.values()) collectTensors(v, out, seen);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, out, seen);
  }
  return out;
}

function isPromiseLike(x: unknown): x is PromiseLike<unknown> {
  return typeof x === "object" && x !== null && typeof (x as { then?: unknown }).then === "function";
}

/**
 * Runs `fn` in a new scope. Tensors made inside are released when it ends,
 * except those in the returned value (tensor, arrays, Maps or plain objects
 * of tensors), which move to the enclosing scope. A body that returns a
 * Promise is an error: async work belongs outside scopes.
 */
export function tidy<T>(fn: () => T): T;
export function tidy<T>(name: string, fn: () => T): T;
export function tidy<T>(a: string | (() => T), b?: () => T): T {
  const name = typeof a === "string" ? a : "tidy";
  const fn = (typeof a === "function" ? a : b) as () => T;
  const scope = new Scope(name);
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    scope.releaseAll();
    throw e;
  }
  stack.pop();
  if (isPromiseLike(result)) {
    scope.releaseAll();
    // Swallow the orphaned promise's rejection; the error below is the report.
    (result as PromiseLike<unknown>).then(undefined, () => undefined);
    throw new Error(`${name}: the scope's body returned a Promise; tensors cannot outlive a synchronous scope, so do async work outside tidy()`);
  }
  const returned = collectTensors(result);
  scope.releaseAll(returned);
  const parent = stack[stack.length - 1];
  for (const t of returned) {
    if (t._scope !== scope) continue; // kept, or from an outer scope
    t._scope = null;
    if (parent && !t.isDisposed) {
      parent.tensors.add(t);
      t._scope = parent;
    }
  }
  return result;
}

/** Disposes every tensor inside a value (tensor, arrays, Maps, plain objects). */
export function dispose(value: unknown): void {
  for (const t of collectTensors(value)) {
    keep(t);
    t.dispose();
  }
}
