// Views, reshapes and joins.
import { callT, callTs, Tensor } from "../tensor.js";

/** Sizes given as separate numbers or as one array: t.view(2, 3) or t.view([2, 3]). */
export type ShapeArgs = number[] | [readonly number[]];

declare module "../tensor.js" {
  interface Tensor {
    /** A view with a new shape (one dim may be -1); the tensor must be viewable. */
    view(...shape: ShapeArgs): Tensor;
    /** A view when possible, else a copy. */
    reshape(...shape: ShapeArgs): Tensor;
    permute(...dims: ShapeArgs): Tensor;
    transpose(dim0: number, dim1: number): Tensor;
    /** Transpose of a 2-d tensor. */
    t(): Tensor;
    contiguous(): Tensor;
    expand(...shape: ShapeArgs): Tensor;
    expandAs(other: Tensor): Tensor;
    repeat(...repeats: ShapeArgs): Tensor;
    repeatInterleave(repeats: number, dim?: number): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor;
    unflatten(dim: number, sizes: readonly number[]): Tensor;
    squeeze(dim?: number): Tensor;
    unsqueeze(dim: number): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    /** Splits into chunks of `size` (a number) or of the given sizes (an array). */
    split(size: number | readonly number[], dim?: number): Tensor[];
    chunk(chunks: number, dim?: number): Tensor[];
    flip(...dims: ShapeArgs): Tensor;
    tril(diagonal?: number): Tensor;
    triu(diagonal?: number): Tensor;
  }
}

const P = Tensor.prototype;
const flat = (xs: (number | readonly number[])[]): number[] => (xs.length === 1 && Array.isArray(xs[0]) ? [...(xs[0] as number[])] : (xs as number[]));

P.view = function (...shape) {
  return callT("aten::view", this, flat(shape));
};
P.reshape = function (...shape) {
  return callT("aten::reshape", this, flat(shape));
};
P.permute = function (...dims) {
  return callT("aten::permute", this, flat(dims));
};
P.transpose = function (dim0, dim1) {
  return callT("aten::transpose.int", this, dim0, dim1);
};
P.t = function () {
  return callT("aten::t", this);
};
P.contiguous = function () {
  return callT("aten::contiguous", this);
};
P.expand = function (...shape) {
  return callT("aten::expand", this, flat(shape));
};
P.expandAs = function (other) {
  return callT("aten::expand", this, other.shape);
};
P.repeat = function (...repeats) {
  return callT("aten::repeat", this, flat(repeats));
};
P.repeatInterleave = function (repeats, dim) {
  return callT("aten::repeat_interleave.self_int", this, repeats, dim ?? null);
};
P.flatten = function (startDim = 0, endDim = -1) {
  return callT("aten::flatten.using_ints", this, startDim, endDim);
};
P.unflatten = function (dim, sizes) {
  const shape = this.shape;
  const d = dim < 0 ? dim + shape.length : dim;
  return callT("aten::view", this, [...shape.slice(0, d), ...sizes, ...shape.slice(d + 1)]);
};
P.squeeze = function (dim) {
  return dim === undefined ? callT("aten::squeeze", this) : callT("aten::squeeze.dim", this, dim);
};
P.unsqueeze = function (dim) {
  return callT("aten::unsqueeze", this, dim);
};
P.narrow = function (dim, start, length) {
  return callT("aten::narrow", this, dim, start, length);
};
P.split = function (size, dim = 0) {
  return typeof size === "number" ? callTs("aten::split.Tensor", this, size, dim) : callTs("aten::split_with_sizes", this, size, dim);
};
P.chunk = function (chunks, dim = 0) {
  return callTs("aten::chunk", this, chunks, dim);
};
P.flip = function (...dims) {
  return callT("aten::flip", this, flat(dims));
};
P.tril = function (diagonal = 0) {
  return callT("aten::tril", this, diagonal);
};
P.triu = function (diagonal = 0) {
  return callT("aten::triu", this, diagonal);
};

/** Joins tensors along an existing dim. */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new Error("cat: expected at least one tensor");
  return callT("aten::cat", tensors, dim);
}

/** Joins tensors along a new dim. */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new Error("stack: expected at least one tensor");
  return callT("aten::stack", tensors, dim);
}
