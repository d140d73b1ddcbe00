// Matrix products and convolution: hand-computed values (exact small
// integers in float32), shapes, and float64 finite-difference gradients.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { arange, availableDevices, einsum, F, manualSeed, ones, randn, tensor, tidy } from "../../src/torch/index.js";
import { assertClose } from "../helpers/close.js";
import { gradcheck } from "../helpers/gradcheck.js";

describe("matrix products: known values", () => {
  for (const device of availableDevices()) {
    test(`${device}: matmul of matrices, vectors and broadcast batches`, () =>
      tidy(() => {
        const a = tensor(
          [
            [1, 2],
            [3, 4],
          ],
          { device },
        );
        const b = tensor(
          [
            [5, 6],
            [7, 8],
          ],
          { device },
        );
        assert.deepEqual(a.matmul(b).toList(), [
          [19, 22],
          [43, 50],
        ]);
        const v = tensor([1, -1], { device });
        assert.deepEqual(a.matmul(v).toFlatArray(), [-1, -1]);
        assert.deepEqual(v.matmul(a).toFlatArray(), [-2, -2]);
        assert.equal(v.matmul(v).item(), 2);
        assert.deepEqual(ones([4, 1, 2, 3], { device }).matmul(ones([5, 3, 6], { device })).shape, [4, 5, 2, 6]);
      }));
  }

  test("mm, bmm, outer, einsum", () =>
    tidy(() => {
      const a = arange(6).float().view(2, 3);
      const b = arange(6).float().view(3, 2);
      assert.deepEqual(a.mm(b).toList(), [
        [10, 13],
        [28, 40],
      ]);
      const ba = arange(12).float().view(2, 2, 3);
      const bb = ones([2, 3, 1]);
      assert.deepEqual(ba.bmm(bb).toList(), [[[3], [12]], [[21], [30]]]);
      assert.deepEqual(tensor([1, 2]).outer(tensor([3, 4, 5])).toList(), [
        [3, 4, 5],
        [6, 8, 10],
      ]);
      assert.deepEqual(einsum("ij,jk->ik", a, b).toList(), a.mm(b).toList());
      assert.deepEqual(einsum("bij->bji", ba).shape, [2, 3, 2]);
      assert.equal(einsum("i,i->", tensor([1, 2, 3]), tensor([4, 5, 6])).item(), 32);
    }));

  test("linear: x W^T + b over leading batch dims, bias optional", () =>
    tidy(() => {
      const x = tensor([[[1, 2]], [[3, 4]]]); // (2, 1, 2)
      const w = tensor([
        [1, 0],
        [0, 1],
        [1, 1],
      ]); // (3, 2)
      const b = tensor([10, 20, 30]);
      assert.deepEqual(F.linear(x, w, b).toList(), [[[11, 22, 33]], [[13, 24, 37]]]);
      assert.deepEqual(F.linear(x, w).toList(), [[[1, 2, 3]], [[3, 4, 7]]]);
    }));

  test("conv2d: a ones kernel sums windows; stride, padding, bias, groups change shapes and values", () =>
    tidy(() => {
      const x = arange(9).float().view(1, 1, 3, 3); // [[0,1,2],[3,4,5],[6,7,8]]
      const k = ones([1, 1, 2, 2]);
      assert.deepEqual(F.conv2d(x, k).toList(), [
        [
          [
            [8, 12],
            [20, 24],
          ],
        ],
      ]);
      assert.deepEqual(F.conv2d(x, k, tensor([1]), { stride: 2 }).toList(), [[[[9]]]]);
      const padded = F.conv2d(x, k, null, { padding: 1 });
      assert.deepEqual(padded.shape, [1, 1, 4, 4]);
      assert.equal(padded.index([0, 0, 0, 0]).item(), 0);
      assert.equal(padded.index([0, 0, 3, 3]).item(), 8);
      assert.deepEqual(F.conv2d(x, k, null, { padding: [0, 1], stride: [1, 2] }).shape, [1, 1, 2, 2]);
      assert.deepEqual(F.conv2d(x, ones([1, 1, 2, 2]), null, { dilation: 2 }).toList(), [[[[16]]]]);
      // groups = 2: each output channel sees only its own input channel.
      const two = tensor([[[[1]], [[10]]]]); // (1, 2, 1, 1)
      const wg = tensor([[[[2]]], [[[3]]]]); // (2, 1, 1, 1)
      assert.deepEqual(F.conv2d(two, wg, null, { groups: 2 }).toList(), [[[[2]], [[30]]]]);
    }));
});

describe("matrix products: gradients (float64 finite differences)", () => {
  const r = (shape: number[], seed: number) => {
    manualSeed(seed);
    return randn(shape, { dtype: "float64" });
  };

  test("matmul (broadcast batches), mm, bmm, outer, einsum", () =>
    tidy(() => {
      gradcheck((a, b) => a.matmul(b), [r([2, 1, 2, 3], 71), r([3, 3, 2], 72)]);
      gradcheck((a, b) => a.matmul(b), [r([3], 73), r([3, 2], 74)]);
      gradcheck((a, b) => a.mm(b), [r([2, 3], 75), r([3, 2], 76)]);
      gradcheck((a, b) => a.bmm(b), [r([2, 2, 3], 77), r([2, 3, 2], 78)]);
      gradcheck((a, b) => a.outer(b), [r([2], 79), r([3], 80)]);
      gradcheck((a, b) => einsum("bij,bkj->bik", a, b), [r([2, 2, 3], 81), r([2, 2, 3], 82)]);
    }));

  test("linear with and without bias", () =>
    tidy(() => {
      gradcheck((x, w, b) => F.linear(x, w, b), [r([2, 2, 3], 83), r([4, 3], 84), r([4], 85)]);
      gradcheck((x, w) => F.linear(x, w), [r([2, 3], 86), r([2, 3], 87)]);
    }));

  test("conv2d with stride/padding/bias and with groups/dilation", () =>
    tidy(() => {
      gradcheck((x, w, b) => F.conv2d(x, w, b, { stride: 2, padding: 1 }), [r([1, 2, 4, 4], 88), r([3, 2, 3, 3], 89), r([3], 90)]);
      gradcheck((x, w) => F.conv2d(x, w, null, { groups: 2, dilation: 2 }), [r([1, 2, 5, 5], 91), r([4, 1, 2, 2], 92)]);
    }));

  test("float32 and float64 results agree (same kernels, 1e-5)", () =>
    tidy(() => {
      const a = r([4, 8], 93);
      const b = r([8, 3], 94);
      assertClose(a.float().matmul(b.float()), a.matmul(b).toFlatArray(), { atol: 1e-5, rtol: 1e-5 });
    }));
});
