// Indexing, slicing, gather/scatter, masking, sorting and sampling.
import type { Generator } from "../creation.js";
import { callInPlace, callT, callTs, Tensor } from "../tensor.js";

/**
 * One entry of an index spec, per dimension (numpy/PyTorch semantics):
 * a number selects (and drops the dim), a {start,end,step} range slices,
 * null inserts a new dim, "..." stands for the remaining dims, and a
 * Tensor (int64 or bool) indexes advanced-style.
 */
export type IndexItem = number | { start?: number; end?: number; step?: number } | null | "..." | Tensor;

/** Shorthand for a range entry: sl(1, 5) is Python's 1:5. */
export function sl(start?: number, end?: number, step?: number): { start?: number; end?: number; step?: number } {
  return { start, end, step };
}

declare module "../tensor.js" {
  interface Tensor {
    /** Picks index `index` along `dim`, dropping that dim. */
    select(dim: number, index: number): Tensor;
    /** Python's t[..., start:end:step] along one dim (a view). */
    slice(dim: number, start?: number, end?: number, step?: number): Tensor;
    /** General indexing, e.g. t.index([0, sl(1, 3), null, "...", idx]). */
    index(spec: readonly IndexItem[]): Tensor;
    indexSelect(dim: number, index: Tensor): Tensor;
    gather(dim: number, index: Tensor): Tensor;
    scatter(dim: number, index: Tensor, src: Tensor | number): Tensor;
    scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor;
    /** Out-of-place index_put: result[indices] = values (accumulate adds instead). */
    indexPut(indices: readonly (Tensor | null)[], values: Tensor, accumulate?: boolean): Tensor;
    maskedFill(mask: Tensor, value: number): Tensor;
    maskedFill_(mask: Tensor, value: number): Tensor;
    maskedSelect(mask: Tensor): Tensor;
    /** k largest (or smallest) values and their indices along `dim`. */
    topk(k: number, dim?: number, largest?: boolean, sorted?: boolean): { values: Tensor; indices: Tensor };
    sort(dim?: number, descending?: boolean, stable?: boolean): { values: Tensor; indices: Tensor };
    argsort(dim?: number, descending?: boolean): Tensor;
    /** Samples `numSamples` category indices per row from (unnormalized) probabilities. */
    multinomial(numSamples: number, replacement?: boolean, generator?: Generator): Tensor;
    nonzero(): Tensor;
  }
}

const P = Tensor.prototype;
const MAX = Number.MAX_SAFE_INTEGER;

P.select = function (dim, index) {
  return callT("aten::select.int", this, dim, index);
};
P.slice = function (dim, start, end, step = 1) {
  return callT("aten::slice.Tensor", this, dim, start ?? null, end ?? null, step);
};
P.index = function (spec) {
  const ellipsis = spec.indexOf("...");
  if (ellipsis !== spec.lastIndexOf("...")) throw new Error("index: at most one '...' is allowed");
  // Dims of `this` the spec consumes: a bool mask covers as many dims as it has.
  const consumed = spec.reduce<number>((n, s) => n + (s === null || s === "..." ? 0 : s instanceof Tensor && s.dtype === "bool" ? s.ndim : 1), 0);
  if (consumed > this.ndim) throw new RangeError(`index: too many indices (${consumed}) for a ${this.ndim}-d tensor`);
  let t: Tensor = this;
  const owned: Tensor[] = [];
  // Advanced (tensor) indices by dim of the final basic-indexed view, null elsewhere.
  const advanced: (Tensor | null)[] = [];
  let dim = 0;
  const step = (next: Tensor) => {
    if (t !== this) owned.push(t);
    t = next;
  };
  try {
    for (const item of spec) {
      if (item === "...") {
        const skip = this.ndim - consumed;
        for (let i = 0; i < skip; i++) advanced.push(null);
        dim += skip;
      } else if (item === null) {
        step(callT("aten::unsqueeze", t, dim));
        advanced.push(null);
        dim += 1;
      } else if (typeof item === "number") {
        const size = t.size(dim);
        if (!Number.isInteger(item) || item < -size || item >= size) {
          throw new RangeError(`index: index ${item} is out of range for dimension ${dim} of size ${size}`);
        }
        step(callT("aten::select.int", t, dim, item));
      } else if (item instanceof Tensor) {
        // One entry either way: aten::index expands a k-d bool mask over k dims itself.
        advanced.push(item);
        dim += item.dtype === "bool" ? item.ndim : 1;
      } else if (typeof item === "object") {
        step(callT("aten::slice.Tensor", t, dim, item.start ?? null, item.end ?? MAX, item.step ?? 1));
        advanced.push(null);
        dim += 1;
      } else {
        throw new TypeError(`index: unsupported index item ${String(item)}; expected a number, sl(...), null, '...' or a Tensor`);
      }
    }
    if (advanced.some((a) => a !== null)) {
      while (advanced.length && advanced[advanced.length - 1] === null) advanced.pop();
      step(callT("aten::index.Tensor", t, advanced));
    }
  } catch (e) {
    if (t !== this) owned.push(t);
    for (const o of owned) o.dispose();
    throw e;
  }
  for (const o of owned) o.dispose();
  return t === this ? callT("aten::alias", this) : t;
};
P.indexSelect = function (dim, index) {
  return callT("aten::index_select", this, dim, index);
};
P.gather = function (dim, index) {
  return callT("aten::gather", this, dim, index);
};
P.scatter = function (dim, index, src) {
  return typeof src === "number" ? callT("aten::scatter.value", this, dim, index, src) : callT("aten::scatter.src", this, dim, index, src);
};
P.scatterAdd = function (dim, index, src) {
  return callT("aten::scatter_add", this, dim, index, src);
};
P.indexPut = function (indices, values, accumulate = false) {
  return callT("aten::index_put", this, indices, values, accumulate);
};
// libtorch 1.13 accepts a float mask in masked_fill and silently fills
// nothing, so the mask's dtype is checked here.
function checkMask(op: string, mask: Tensor): void {
  if (mask instanceof Tensor && mask.dtype !== "bool") throw new TypeError(`${op}: mask must be a bool tensor, got ${mask.dtype}`);
}
P.maskedFill = function (mask, value) {
  checkMask("maskedFill", mask);
  return callT("aten::masked_fill.Scalar", this, mask, { float: value });
};
P.maskedFill_ = function (mask, value) {
  checkMask("maskedFill_", mask);
  callInPlace("aten::masked_fill_.Scalar", this, mask, { float: value });
  return this;
};
P.maskedSelect = function (mask) {
  return callT("aten::masked_select", this, mask);
};
P.topk = function (k, dim = -1, largest = true, sorted = true) {
  const [values, indices] = callTs("aten::topk", this, k, dim, largest, sorted);
  return { values, indices };
};
P.sort = function (dim = -1, descending = false, stable = false) {
  const [values, indices] = callTs("aten::sort.stable", this, stable, dim, descending);
  return { values, indices };
};
P.argsort = function (dim = -1, descending = false) {
  return callT("aten::argsort", this, dim, descending);
};
P.multinomial = function (numSamples, replacement = false, generator) {
  return callT("aten::multinomial", this, numSamples, replacement, (generator?._g ?? null) as never);
};
P.nonzero = function () {
  return callT("aten::nonzero", this);
};
