// Matrix products.
import { callT, Tensor } from "../tensor.js";

declare module "../tensor.js" {
  interface Tensor {
    /** Broadcasting matrix product (torch.matmul semantics). */
    matmul(other: Tensor): Tensor;
    /** 2-d matrix product. */
    mm(other: Tensor): Tensor;
    /** Batched 3-d matrix product. */
    bmm(other: Tensor): Tensor;
    outer(other: Tensor): Tensor;
  }
}

const P = Tensor.prototype;
P.matmul = function (other) {
  return callT("aten::matmul", this, other);
};
P.mm = function (other) {
  return callT("aten::mm", this, other);
};
P.bmm = function (other) {
  return callT("aten::bmm", this, other);
};
P.outer = function (other) {
  return callT("aten::outer", this, other);
};

/** Einstein summation, e.g. einsum("bhqd,bhkd->bhqk", q, k). */
export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  return callT("aten::einsum", equation, operands);
}
