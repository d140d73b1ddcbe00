// Elementwise math and comparisons, with broadcasting; a number argument is
// a wrapped scalar (it does not promote a float16 tensor to float32, as in PyTorch).
import { type DType, dtypeCode } from "../dtype.js";
import { callInPlace, callT, Tensor } from "../tensor.js";

type Operand = Tensor | number;

declare module "../tensor.js" {
  interface Tensor {
    add(other: Operand, alpha?: number): Tensor;
    sub(other: Operand, alpha?: number): Tensor;
    mul(other: Operand): Tensor;
    /** True division; roundingMode "trunc" or "floor" for integer-style division. */
    div(other: Operand, roundingMode?: "trunc" | "floor"): Tensor;
    pow(exponent: Operand): Tensor;
    remainder(other: Operand): Tensor;
    maximum(other: Tensor): Tensor;
    minimum(other: Tensor): Tensor;
    neg(): Tensor;
    abs(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    log1p(): Tensor;
    expm1(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    square(): Tensor;
    reciprocal(): Tensor;
    sin(): Tensor;
    cos(): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    relu(): Tensor;
    sign(): Tensor;
    floor(): Tensor;
    ceil(): Tensor;
    round(): Tensor;
    clamp(min?: number | null, max?: number | null): Tensor;
    eq(other: Operand): Tensor;
    ne(other: Operand): Tensor;
    lt(other: Operand): Tensor;
    le(other: Operand): Tensor;
    gt(other: Operand): Tensor;
    ge(other: Operand): Tensor;
    logicalNot(): Tensor;
    logicalAnd(other: Tensor): Tensor;
    logicalOr(other: Tensor): Tensor;
    isnan(): Tensor;
    isfinite(): Tensor;
    /** Converts dtype and/or device; returns this tensor's copy (never `this`). */
    to(target: DType | string, opts?: { dtype?: DType }): Tensor;
    float(): Tensor;
    double(): Tensor;
    long(): Tensor;
    bool(): Tensor;
    bfloat16(): Tensor;
    half(): Tensor;
    clone(): Tensor;
    detach(): Tensor;
    /** A new handle to the same storage (autograd-aware, like torch's alias): the caller owns it, the original stays. */
    alias(): Tensor;
    // in place: each returns `this`
    add_(other: Operand, alpha?: number): Tensor;
    sub_(other: Operand, alpha?: number): Tensor;
    mul_(other: Operand): Tensor;
    div_(other: Operand): Tensor;
    clamp_(min?: number | null, max?: number | null): Tensor;
    copy_(src: Tensor): Tensor;
    fill_(value: number): Tensor;
    zero_(): Tensor;
    /** this += value * t1 * t2 */
    addcmul_(t1: Tensor, t2: Tensor, value?: number): Tensor;
    /** this += value * t1 / t2 */
    addcdiv_(t1: Tensor, t2: Tensor, value?: number): Tensor;
    /** this += weight * (end - this) */
    lerp_(end: Tensor, weight: number): Tensor;
    sqrt_(): Tensor;
    /** Fills with uniform values in [from, to). */
    uniform_(from?: number, to?: number): Tensor;
    /** Fills with normal values. */
    normal_(mean?: number, std?: number): Tensor;
  }
}

const P = Tensor.prototype;
const f = (x: number) => ({ float: x });

function binary(tensorOp: string, scalarOp: string) {
  return function (this: Tensor, other: Operand): Tensor {
    return typeof other === "number" ? callT(scalarOp, this, other) : callT(tensorOp, this, other);
  };
}

P.add = function (other, alpha = 1) {
  return typeof other === "number" ? callT("aten::add.Scalar", this, other, alpha) : callT("aten::add.Tensor", this, other, alpha);
};
P.sub = function (other, alpha = 1) {
  return typeof other === "number" ? callT("aten::sub.Scalar", this, other, alpha) : callT("aten::sub.Tensor", this, other, alpha);
};
P.mul = binary("aten::mul.Tensor", "aten::mul.Scalar");
P.div = function (other, roundingMode) {
  if (roundingMode) {
    return typeof other === "number"
      ? callT("aten::div.Scalar_mode", this, other, roundingMode)
      : callT("aten::div.Tensor_mode", this, other, roundingMode);
  }
  return typeof other === "number" ? callT("aten::div.Scalar", this, other) : callT("aten::div.Tensor", this, other);
};
P.pow = binary("aten::pow.Tensor_Tensor", "aten::pow.Tensor_Scalar");
P.remainder = binary("aten::remainder.Tensor", "aten::remainder.Scalar");
P.maximum = function (other) {
  return callT("aten::maximum", this, other);
};
P.minimum = function (other) {
  return callT("aten::minimum", this, other);
};

const unaryOps = {
  neg: "aten::neg",
  abs: "aten::abs",
  exp: "aten::exp",
  log: "aten::log",
  log1p: "aten::log1p",
  expm1: "aten::expm1",
  sqrt: "aten::sqrt",
  rsqrt: "aten::rsqrt",
  square: "aten::square",
  reciprocal: "aten::reciprocal",
  sin: "aten::sin",
  cos: "aten::cos",
  tanh: "aten::tanh",
  sigmoid: "aten::sigmoid",
  relu: "aten::relu",
  sign: "aten::sign",
  floor: "aten::floor",
  ceil: "aten::ceil",
  round: "aten::round",
  logicalNot: "aten::logical_not",
  isnan: "aten::isnan",
  isfinite: "aten::isfinite",
  clone: "aten::clone",
  detach: "aten::detach",
  alias: "aten::alias",
} as const;
for (const [name, op] of Object.entries(unaryOps)) {
  (P as unknown as Record<string, () => Tensor>)[name] = function (this: Tensor) {
    return callT(op, this);
  };
}

// Bounds go across as plain numbers: an integral bound stays an integer
// Scalar so that clamping an int64 tensor keeps int64 (as torch.clamp does),
// while a fractional bound promotes it to the default float dtype.
P.clamp = function (min = null, max = null) {
  if (min === null && max === null) throw new Error("clamp: at least one of min and max must be given");
  return callT("aten::clamp", this, min, max);
};

P.eq = binary("aten::eq.Tensor", "aten::eq.Scalar");
P.ne = binary("aten::ne.Tensor", "aten::ne.Scalar");
P.lt = binary("aten::lt.Tensor", "aten::lt.Scalar");
P.le = binary("aten::le.Tensor", "aten::le.Scalar");
P.gt = binary("aten::gt.Tensor", "aten::gt.Scalar");
P.ge = binary("aten::ge.Tensor", "aten::ge.Scalar");
P.logicalAnd = function (other) {
  return callT("aten::logical_and", this, other);
};
P.logicalOr = function (other) {
  return callT("aten::logical_or", this, other);
};

const DTYPES = new Set(["float32", "float64", "bfloat16", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]);

// As torch's Tensor.to, a conversion to the dtype and device a tensor already
// has copies nothing; it returns a new handle (an alias) to the same storage,
// so that disposing the result never disposes the input.
P.to = function (target, opts = {}) {
  if (DTYPES.has(target)) return target === this.dtype ? callT("aten::alias", this) : callT("aten::_to_copy", this, dtypeCode(target as DType));
  if (target === this.device && (opts.dtype === undefined || opts.dtype === this.dtype)) return callT("aten::alias", this);
  // device, optionally with a dtype
  const dtype = opts.dtype ? dtypeCode(opts.dtype) : null;
  return callT("aten::_to_copy", this, dtype, null, target, null, false);
};
P.float = function () {
  return this.to("float32");
};
P.double = function () {
  return this.to("float64");
};
P.long = function () {
  return this.to("int64");
};
P.bool = function () {
  return this.to("bool");
};
P.bfloat16 = function () {
  return this.to("bfloat16");
};
P.half = function () {
  return this.to("float16");
};

// ---- in place ----
P.add_ = function (other, alpha = 1) {
  if (typeof other === "number") callInPlace("aten::add_.Scalar", this, other, alpha);
  else callInPlace("aten::add_.Tensor", this, other, alpha);
  return this;
};
P.sub_ = function (other, alpha = 1) {
  if (typeof other === "number") callInPlace("aten::sub_.Scalar", this, other, alpha);
  else callInPlace("aten::sub_.Tensor", this, other, alpha);
  return this;
};
P.mul_ = function (other) {
  if (typeof other === "number") callInPlace("aten::mul_.Scalar", this, other);
  else callInPlace("aten::mul_.Tensor", this, other);
  return this;
};
P.div_ = function (other) {
  if (typeof other === "number") callInPlace("aten::div_.Scalar", this, other);
  else callInPlace("aten::div_.Tensor", this, other);
  return this;
};
P.clamp_ = function (min = null, max = null) {
  if (min === null && max === null) throw new Error("clamp_: at least one of min and max must be given");
  callInPlace("aten::clamp_", this, min, max);
  return this;
};
P.copy_ = function (src) {
  callInPlace("aten::copy_", this, src);
  return this;
};
P.fill_ = function (value) {
  callInPlace("aten::fill_.Scalar", this, value);
  return this;
};
P.zero_ = function () {
  callInPlace("aten::zero_", this);
  return this;
};
P.addcmul_ = function (t1, t2, value = 1) {
  callInPlace("aten::addcmul_", this, t1, t2, value);
  return this;
};
P.addcdiv_ = function (t1, t2, value = 1) {
  callInPlace("aten::addcdiv_", this, t1, t2, value);
  return this;
};
P.lerp_ = function (end, weight) {
  callInPlace("aten::lerp_.Scalar", this, end, f(weight));
  return this;
};
P.sqrt_ = function () {
  callInPlace("aten::sqrt_", this);
  return this;
};
P.uniform_ = function (from = 0, to = 1) {
  callInPlace("aten::uniform_", this, from, to);
  return this;
};
P.normal_ = function (mean = 0, std = 1) {
  callInPlace("aten::normal_", this, mean, std);
  return this;
};

/**
 * Elementwise choice: where(cond, a, b) takes a where cond is true, else b,
 * broadcasting all three. Numbers follow PyTorch's promotion: integral ones
 * keep an int tensor's dtype (where(c, 1, 0) is int64), fractional ones
 * promote to the default float dtype.
 */
export function where(condition: Tensor, a: Operand, b: Operand): Tensor {
  if (typeof a === "number" && typeof b === "number") return callT("aten::where.Scalar", condition, a, b);
  if (typeof a === "number") return callT("aten::where.ScalarSelf", condition, a, b as Tensor);
  if (typeof b === "number") return callT("aten::where.ScalarOther", condition, a, b);
  return callT("aten::where.self", condition, a, b);
}
