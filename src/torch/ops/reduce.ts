// Reductions over all elements or over dims, with keepdim.
import { type DType, dtypeCode } from "../dtype.js";
import { callT, callTs, Tensor } from "../tensor.js";

type Dims = number | readonly number[];

declare module "../tensor.js" {
  interface Tensor {
    /** Sum over all elements, or over `dim`. */
    sum(dim?: Dims, keepdim?: boolean, dtype?: DType): Tensor;
    mean(dim?: Dims, keepdim?: boolean): Tensor;
    prod(dim?: number, keepdim?: boolean): Tensor;
    /** Maximum of all elements (no dim), or values and indices along `dim`. */
    max(): Tensor;
    max(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
    min(): Tensor;
    min(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
    amax(dim: Dims, keepdim?: boolean): Tensor;
    amin(dim: Dims, keepdim?: boolean): Tensor;
    argmax(dim?: number, keepdim?: boolean): Tensor;
    argmin(dim?: number, keepdim?: boolean): Tensor;
    logsumexp(dim: Dims, keepdim?: boolean): Tensor;
    /** Variance with Bessel's correction by default (correction = 1), as torch.var. */
    var(dim?: Dims, keepdim?: boolean, correction?: number): Tensor;
    std(dim?: Dims, keepdim?: boolean, correction?: number): Tensor;
    /** p-norm over all elements or dims (default p = 2). */
    norm(p?: number, dim?: Dims, keepdim?: boolean): Tensor;
    all(): Tensor;
    any(): Tensor;
    cumsum(dim: number, dtype?: DType): Tensor;
  }
}

const P = Tensor.prototype;
const dimList = (d: Dims): readonly number[] => (typeof d === "number" ? [d] : d);

P.sum = function (dim, keepdim = false, dtype) {
  const dt = dtype ? dtypeCode(dtype) : null;
  if (dim === undefined) return callT("aten::sum", this, dt);
  return callT("aten::sum.dim_IntList", this, dimList(dim), keepdim, dt);
};
P.mean = function (dim, keepdim = false) {
  if (dim === undefined) return callT("aten::mean", this);
  return callT("aten::mean.dim", this, dimList(dim), keepdim);
};
P.prod = function (dim, keepdim = false) {
  if (dim === undefined) return callT("aten::prod", this);
  return callT("aten::prod.dim_int", this, dim, keepdim);
};
P.max = function (this: Tensor, dim?: number, keepdim: boolean = false) {
  if (dim === undefined) return callT("aten::max", this);
  const [values, indices] = callTs("aten::max.dim", this, dim, keepdim);
  return { values, indices };
} as Tensor["max"];
P.min = function (this: Tensor, dim?: number, keepdim: boolean = false) {
  if (dim === undefined) return callT("aten::min", this);
  const [values, indices] = callTs("aten::min.dim", this, dim, keepdim);
  return { values, indices };
} as Tensor["min"];
P.amax = function (dim, keepdim = false) {
  return callT("aten::amax", this, dimList(dim), keepdim);
};
P.amin = function (dim, keepdim = false) {
  return callT("aten::amin", this, dimList(dim), keepdim);
};
P.argmax = function (dim, keepdim = false) {
  return callT("aten::argmax", this, dim ?? null, keepdim);
};
P.argmin = function (dim, keepdim = false) {
  return callT("aten::argmin", this, dim ?? null, keepdim);
};
P.logsumexp = function (dim, keepdim = false) {
  return callT("aten::logsumexp", this, dimList(dim), keepdim);
};
P.var = function (dim, keepdim = false, correction = 1) {
  return callT("aten::var.correction", this, dim === undefined ? null : dimList(dim), correction, keepdim);
};
P.std = function (dim, keepdim = false, correction = 1) {
  return callT("aten::std.correction", this, dim === undefined ? null : dimList(dim), correction, keepdim);
};
P.norm = function (p = 2, dim, keepdim = false) {
  return callT("aten::linalg_vector_norm", this, { float: p }, dim === undefined ? null : dimList(dim), keepdim);
};
P.all = function () {
  return callT("aten::all", this);
};
P.any = function () {
  return callT("aten::any", this);
};
P.cumsum = function (dim, dtype) {
  return callT("aten::cumsum", this, dim, dtype ? dtypeCode(dtype) : null);
};
