// Bad input gives a JS Error that names the op and the reason, and the
// process keeps working afterwards (libtorch's C++ exceptions never escape).
// libtorch's own wording differs between 1.13 and 2.x; patterns accept both.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { cat, F, fromBytes, liveTensors, ones, type Tensor, tensor, tidy, where, zeros } from "../../src/torch/index.js";

/** Asserts `fn` throws an Error whose message matches every pattern. */
function throwsWith(fn: () => unknown, ...patterns: RegExp[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof Error, `expected an Error, got ${String(caught)}`);
  for (const p of patterns) assert.match(caught.message, p);
}

const m = () =>
  tensor([
    [1, 2],
    [3, 4],
  ]);
const ids = (xs: number[]) => tensor(xs, { dtype: "int64" });

describe("shape mismatch", () => {
  test("matmul / mm / bmm with incompatible inner dims", () =>
    tidy(() => {
      throwsWith(() => m().matmul(ones([3, 2])), /aten::matmul/, /size mismatch|cannot be multiplied|shapes/);
      throwsWith(() => m().mm(ones([3])), /aten::mm/, /2D|matrix|dim/);
      throwsWith(() => ones([2, 2, 3]).bmm(ones([2, 2, 3])), /aten::bmm/, /size|shape/i);
      throwsWith(() => F.linear(ones([2, 3]), ones([4, 5])), /aten::linear/, /cannot be multiplied|size mismatch|shapes/);
      throwsWith(() => F.conv2d(ones([1, 3, 4, 4]), ones([2, 2, 3, 3])), /aten::conv2d/, /channels|expected/i);
    }));

  test("broadcast failure in add / mul / where, and mismatched cat / view", () =>
    tidy(() => {
      throwsWith(() => m().add(tensor([1, 2, 3])), /aten::add\.Tensor/, /size of tensor a \(2\) must match the size of tensor b \(3\)/);
      throwsWith(() => m().mul(ones([3, 1, 4])), /aten::mul\.Tensor/, /must match/);
      throwsWith(() => cat([m(), ones([1, 3])]), /aten::cat/, /Sizes of tensors must match/);
      throwsWith(() => m().view(3), /aten::view/, /shape '\[3\]' is invalid for input of size 4/);
      throwsWith(() => m().expand(3, 3), /aten::expand/, /must match/);
    }));
});

describe("wrong dtype", () => {
  test("float ids for embedding, float index for indexSelect / gather / index", () =>
    tidy(() => {
      throwsWith(() => F.embedding(tensor([0.5]), m()), /aten::embedding/, /indices.*(Long|Int)|(Long|Int).*Float/);
      throwsWith(() => m().indexSelect(0, tensor([0])), /aten::index_select/, /int32 or int64/);
      throwsWith(() => m().gather(1, tensor([[0]])), /aten::gather/, /Expected dtype int(32\/int)?64 for index/);
      throwsWith(() => m().index([tensor([0.0])]), /aten::index\.Tensor/, /indices must be long/);
      throwsWith(() => F.crossEntropy(m(), tensor([0, 1])), /aten::cross_entropy_loss/, /expected scalar type Long but found Float|expected target dtype to be Long or Byte, but got Float/);
      throwsWith(() => ids([1, 2]).matmul(tensor([1, 2])), /aten::matmul/, /same dtype|Long and Float/);
      throwsWith(() => m().maskedFill(tensor([1, 0]), 0), /maskedFill: mask must be a bool tensor, got float32/);
      throwsWith(() => m().maskedFill_(tensor([1, 0], { dtype: "uint8" }), 0), /maskedFill_: mask must be a bool tensor, got uint8/);
      throwsWith(() => m().maskedSelect(tensor([1, 0])), /aten::masked_select/, /BoolTensor/);
      throwsWith(() => where(tensor([1, 0]), m(), m()), /aten::where\.self/, /boolean tensor/);
    }));
});

describe("index out of range", () => {
  test("select, index(), gather, indexSelect, embedding, crossEntropy targets", () =>
    tidy(() => {
      throwsWith(() => m().select(0, 5), /aten::select\.int/, /index 5 out of range for tensor of size \[2, 2\] at dimension 0/);
      throwsWith(() => m().index([2]), /^index: /, /index 2 is out of range for dimension 0 of size 2/);
      throwsWith(() => m().index([0, 0, 0]), /^index: /, /too many indices \(3\) for a 2-d tensor/);
      throwsWith(() => m().index([ids([7])]), /aten::index\.Tensor/, /out of bounds/);
      throwsWith(() => m().gather(1, ids([2, 0]).view(1, 2)), /aten::gather/, /index 2 is out of bounds for dimension 1 with size 2/);
      throwsWith(() => m().indexSelect(0, ids([3])), /aten::index_select/, /out of range/);
      throwsWith(() => F.embedding(ids([9]), m()), /aten::embedding/, /index out of range/);
      throwsWith(() => F.crossEntropy(m(), ids([0, 5])), /aten::cross_entropy_loss/, /Target 5 is out of bounds/);
      throwsWith(() => m().size(2), /size: dimension 2 out of range for a 2-d tensor/);
      throwsWith(() => m().sum(3), /aten::sum\.dim_IntList/, /Dimension out of range/);
    }));
});

describe("released tensors", () => {
  test("using a disposed tensor as an argument, for data or item names the op and says it was released", () => {
    const a = m();
    const b = tensor([1, 2]);
    b.dispose();
    assert.equal(b.isDisposed, true);
    throwsWith(() => a.add(b), /aten::add\.Tensor: argument 'other'/, /released tensor/);
    throwsWith(() => b.add(a), /aten::add\.Tensor: argument 'self'/, /released tensor/);
    throwsWith(() => b.toFlatArray(), /Tensor\.toTypedArray: tensor used after dispose/, /released tensor/);
    throwsWith(() => b.item(), /item/, /released tensor/);
    throwsWith(() => cat([a, b]), /aten::cat: argument 'tensors'\[1\]/, /released tensor/);
    b.dispose(); // a second dispose is a no-op
    a.dispose();
  });

  test("a tensor made inside an ended scope is released", () => {
    let leaked: Tensor | undefined;
    tidy(() => {
      leaked = ones([2]);
    });
    assert.equal(leaked!.isDisposed, true);
    throwsWith(() => leaked!.mul(2), /aten::mul\.Scalar/, /released tensor .*scope/);
  });
});

describe("wrong argument types", () => {
  test("a string, number or plain array where a tensor is expected", () =>
    tidy(() => {
      throwsWith(() => m().add("foo" as never), /aten::add\.Tensor: argument 'other' expected a Tensor, got string/);
      throwsWith(() => m().matmul(3 as never), /aten::matmul: argument 'other' expected a Tensor, got number/);
      throwsWith(() => F.linear(m(), [1, 2] as never), /aten::linear: argument 'weight' expected a Tensor, got array/);
      throwsWith(() => m().gather(0, {} as never), /aten::gather: argument 'index' expected a Tensor, got object/);
      throwsWith(() => m().view(1.5), /aten::view: argument 'size'\[0\] expected an integer, got 1\.5/);
      throwsWith(() => m().transpose("a" as never, 0), /aten::transpose\.int: argument 'dim0' expected an integer, got string/);
      throwsWith(() => m().to("gpu"), /aten::_to_copy: argument 'device' is not a valid device: 'gpu'/);
    }));

  test("creation: ragged arrays, non-numbers, wrong sizes, unknown dtypes, bad shapes", () =>
    tidy(() => {
      throwsWith(() => tensor([[1, 2], [3]]), /tensor: ragged nested array: expected length 2 at depth 1, got 1/);
      throwsWith(() => tensor([1, "x"] as never), /tensor: expected numbers, booleans or bigints .* got string at element 1/);
      throwsWith(() => tensor(new Float32Array(5), { shape: [2, 3] }), /tensor: shape \[2, 3\] has 6 elements but the data has 5/);
      throwsWith(() => tensor(new Uint16Array(2)), /tensor: Uint16Array .* pass dtype 'bfloat16' or 'float16'/);
      throwsWith(() => tensor(new Uint32Array(2) as never), /tensor: unsupported typed array Uint32Array/);
      throwsWith(() => tensor([Infinity], { dtype: "int64" }), /tensor: Infinity at element 0 cannot be stored as int64/);
      throwsWith(() => zeros([2], { dtype: "float" as never }), /unknown dtype 'float'/);
      throwsWith(() => zeros([-1]), /aten::zeros/, /negative dimension -1|Dimension size must be non-negative/);
      throwsWith(() => zeros([2], { device: "gpu" as never }), /aten::zeros: argument 'device' is not a valid device: 'gpu'/);
      throwsWith(() => fromBytes(new Uint8Array(3), "float32", [1]), /fromBytes: shape \[1\] of float32 needs 4 bytes, got 3/);
      throwsWith(() => m().item(), /item: a tensor with 4 elements cannot be converted to a number/);
    }));
});

test("after all of the above the process still computes, and nothing leaked", () => {
  const before = liveTensors();
  tidy(() => {
    for (let i = 0; i < 50; i++) {
      try {
        m().matmul(ones([3, 3]));
      } catch {
        // expected: shape mismatch
      }
    }
    assert.deepEqual(m().matmul(m()).toList(), [
      [7, 10],
      [15, 22],
    ]);
  });
  assert.equal(liveTensors(), before);
});
