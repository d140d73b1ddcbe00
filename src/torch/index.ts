// The vlm-grpo tensor API. Import from here: this file also loads every op
// family that attaches methods to Tensor.
import "./ops/elementwise.js";
import "./ops/reduce.js";
import "./ops/shape.js";
import "./ops/indexing.js";
import "./ops/linalg.js";

export { Tensor, type Shape, type NestedArray, hasOp } from "./tensor.js";
export * from "./dtype.js";
export * from "./device.js";
export * from "./creation.js";
export * from "./scope.js";
export * from "./autograd.js";
export * from "./memory.js";
export * from "./fileio.js";
export { features, parallelInfo, getNumThreads, setNumThreads, getBlasThreads, setBlasThreads } from "./features.js";
export { where } from "./ops/elementwise.js";
export { cat, stack, type ShapeArgs } from "./ops/shape.js";
export { sl, type IndexItem } from "./ops/indexing.js";
export { einsum } from "./ops/linalg.js";
export * as F from "./functional.js";
export * from "./distributed.js";
export * from "./grad_sync.js";
export * from "./parallel.js";
