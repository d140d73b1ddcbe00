// Views, reshapes and joins: known values, view aliasing, and float64
// finite-difference gradients for every shape op.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { arange, cat, F, manualSeed, randn, stack, type Tensor, tensor, tidy } from "../../src/torch/index.js";
import { gradcheck } from "../helpers/gradcheck.js";

// 0..5 as float32 in shape (2, 3).
const m = (): Tensor => arange(6).float().view(2, 3);

describe("shape ops: known values", () => {
  test("view and reshape share storage when possible; -1 is inferred", () =>
    tidy(() => {
      const x = m();
      const v = x.view(3, -1);
      assert.deepEqual(v.shape, [3, 2]);
      assert.deepEqual(x.view([6]).toFlatArray(), [0, 1, 2, 3, 4, 5]);
      v.select(0, 0).fill_(9); // writes through the view
      assert.deepEqual(x.toList(), [
        [9, 9, 2],
        [3, 4, 5],
      ]);
      const t = x.t();
      assert.throws(() => t.view(6), /aten::view: .*(not compatible|reshape)/);
      assert.deepEqual(t.reshape(6).toFlatArray(), [9, 3, 9, 4, 2, 5]);
      assert.deepEqual(t.contiguous().view(6).toFlatArray(), [9, 3, 9, 4, 2, 5]);
    }));

  test("permute, transpose, t, flatten, unflatten, squeeze, unsqueeze", () =>
    tidy(() => {
      const x = arange(24).view(2, 3, 4);
      const p = x.permute(2, 0, 1);
      assert.deepEqual(p.shape, [4, 2, 3]);
      assert.equal(p.index([1, 1, 2]).item(), x.index([1, 2, 1]).item());
      assert.deepEqual(x.permute([1, 0, 2]).shape, [3, 2, 4]);
      assert.deepEqual(x.transpose(0, 2).shape, [4, 3, 2]);
      assert.deepEqual(m().t().toList(), [
        [0, 3],
        [1, 4],
        [2, 5],
      ]);
      assert.deepEqual(x.flatten().shape, [24]);
      assert.deepEqual(x.flatten(1).shape, [2, 12]);
      assert.deepEqual(x.flatten(0, 1).shape, [6, 4]);
      assert.deepEqual(x.unflatten(2, [2, 2]).shape, [2, 3, 2, 2]);
      assert.deepEqual(x.unflatten(-1, [4, 1]).shape, [2, 3, 4, 1]);
      const s = arange(3).view(1, 3, 1);
      assert.deepEqual(s.squeeze().shape, [3]);
      assert.deepEqual(s.squeeze(0).shape, [3, 1]);
      assert.deepEqual(s.squeeze(1).shape, [1, 3, 1], "squeezing a dim of size > 1 is a no-op");
      assert.deepEqual(s.unsqueeze(-1).shape, [1, 3, 1, 1]);
      assert.deepEqual(s.unsqueeze(0).shape, [1, 1, 3, 1]);
    }));

  test("expand, expandAs, repeat, repeatInterleave", () =>
    tidy(() => {
      const c = tensor([[1], [2]]);
      assert.deepEqual(c.expand(2, 3).toList(), [
        [1, 1, 1],
        [2, 2, 2],
      ]);
      assert.deepEqual(c.expand([-1, 2]).shape, [2, 2]);
      assert.deepEqual(c.expandAs(m()).shape, [2, 3]);
      assert.deepEqual(tensor([1, 2]).repeat(2, 2).toList(), [
        [1, 2, 1, 2],
        [1, 2, 1, 2],
      ]);
      assert.deepEqual(tensor([1, 2]).repeatInterleave(2).toFlatArray(), [1, 1, 2, 2]);
      assert.deepEqual(m().repeatInterleave(2, 0).toList(), [
        [0, 1, 2],
        [0, 1, 2],
        [3, 4, 5],
        [3, 4, 5],
      ]);
      assert.deepEqual(m().repeatInterleave(2).shape, [12], "without dim the input is flattened");
    }));

  test("narrow, split, chunk, flip, tril, triu", () =>
    tidy(() => {
      const x = arange(10);
      assert.deepEqual(x.narrow(0, 3, 4).toFlatArray(), [3, 4, 5, 6]);
      assert.deepEqual(
        x.split(4).map((t) => t.toFlatArray()),
        [
          [0, 1, 2, 3],
          [4, 5, 6, 7],
          [8, 9],
        ],
      );
      assert.deepEqual(
        x.split([2, 3, 5]).map((t) => t.numel),
        [2, 3, 5],
      );
      assert.deepEqual(
        m()
          .split(1, 1)
          .map((t) => t.toList()),
        [[[0], [3]], [[1], [4]], [[2], [5]]],
      );
      assert.deepEqual(
        x.chunk(3).map((t) => t.numel),
        [4, 4, 2],
      );
      assert.deepEqual(
        m()
          .chunk(2, 1)
          .map((t) => t.shape),
        [
          [2, 2],
          [2, 1],
        ],
      );
      assert.deepEqual(m().flip(1).toList(), [
        [2, 1, 0],
        [5, 4, 3],
      ]);
      assert.deepEqual(m().flip(0, 1).toList(), [
        [5, 4, 3],
        [2, 1, 0],
      ]);
      const sq = arange(9).view(3, 3);
      assert.deepEqual(sq.tril().toList(), [
        [0, 0, 0],
        [3, 4, 0],
        [6, 7, 8],
      ]);
      assert.deepEqual(sq.triu(1).toList(), [
        [0, 1, 2],
        [0, 0, 5],
        [0, 0, 0],
      ]);
      assert.deepEqual(sq.tril(-1).toList(), [
        [0, 0, 0],
        [3, 0, 0],
        [6, 7, 0],
      ]);
    }));

  test("cat and stack", () =>
    tidy(() => {
      const a = tensor([[1, 2]]);
      const b = tensor([[3, 4]]);
      assert.deepEqual(cat([a, b]).toList(), [
        [1, 2],
        [3, 4],
      ]);
      assert.deepEqual(cat([a, b], 1).toList(), [[1, 2, 3, 4]]);
      assert.deepEqual(cat([a, tensor([[5, 6], [7, 8]])], 0).shape, [3, 2]);
      assert.deepEqual(stack([a, b]).shape, [2, 1, 2]);
      assert.deepEqual(stack([a, b], -1).toList(), [
        [
          [1, 3],
          [2, 4],
        ],
      ]);
      assert.throws(() => cat([]), /cat: expected at least one tensor/);
      assert.throws(() => stack([]), /stack: expected at least one tensor/);
    }));

  test("pad: constant (any value), reflect, replicate, negative pads crop", () =>
    tidy(() => {
      const x = tensor([[[1, 2, 3]]]);
      assert.deepEqual(F.pad(x, [1, 2], "constant", -1).toList(), [[[-1, 1, 2, 3, -1, -1]]]);
      assert.deepEqual(F.pad(x, [2, 1], "reflect").toList(), [[[3, 2, 1, 2, 3, 2]]]);
      assert.deepEqual(F.pad(x, [1, 1], "replicate").toList(), [[[1, 1, 2, 3, 3]]]);
      assert.deepEqual(F.pad(x, [-1, 0]).toList(), [[[2, 3]]]);
      assert.deepEqual(F.pad(x, [0, 0, 1, 0]).toList(), [
        [
          [0, 0, 0],
          [1, 2, 3],
        ],
      ]);
      assert.throws(() => F.pad(x, [1]), /pad: padding must have an even length/);
    }));
});

describe("shape ops: gradients (float64 finite differences)", () => {
  const r = (shape: number[], seed: number) => {
    manualSeed(seed);
    return randn(shape, { dtype: "float64" });
  };
  // A fixed non-uniform weight so that permutations of the output matter.
  const w = (t: Tensor) => t.mul(arange(t.numel, { dtype: "float64" }).view(t.shape).add(1));

  test("view, reshape, permute, transpose, flatten, unflatten, squeeze, unsqueeze, contiguous", () =>
    tidy(() => {
      const x = r([2, 3, 2], 31);
      gradcheck((t) => w(t.view(3, 4)), [x]);
      gradcheck((t) => w(t.transpose(0, 2).reshape(6, 2)), [x]);
      gradcheck((t) => w(t.permute(1, 2, 0).contiguous()), [x]);
      gradcheck((t) => w(t.flatten(1).unflatten(1, [2, 3])), [x]);
      gradcheck((t) => w(t.unsqueeze(1).squeeze(1)), [x]);
    }));

  test("expand, repeat, repeatInterleave, flip, tril, triu, narrow", () =>
    tidy(() => {
      gradcheck((t) => w(t.expand(3, 2, 4)), [r([2, 1], 32)]);
      gradcheck((t) => w(t.repeat(2, 3)), [r([2, 2], 33)]);
      gradcheck((t) => w(t.repeatInterleave(3, 1)), [r([2, 2], 34)]);
      gradcheck((t) => w(t.flip(0, 1)), [r([2, 3], 35)]);
      gradcheck((t) => w(t.tril()).add(w(t.triu(1)).mul(2)), [r([3, 3], 36)]);
      gradcheck((t) => w(t.narrow(1, 1, 2)), [r([2, 4], 37)]);
    }));

  test("cat, stack, split, chunk, pad", () =>
    tidy(() => {
      gradcheck((a, b) => w(cat([a, b], 1)), [r([2, 2], 38), r([2, 3], 39)]);
      gradcheck((a, b) => w(stack([a, b], 1)), [r([2, 3], 40), r([2, 3], 41)]);
      gradcheck((t) => t.split([1, 3], 1).map(w), [r([2, 4], 42)]);
      gradcheck((t) => t.chunk(2, 0).map((c, i) => w(c).mul(i + 1)), [r([3, 2], 43)]);
      gradcheck((t) => w(F.pad(t, [1, 2], "constant", 3)), [r([1, 2, 3], 44)]);
      gradcheck((t) => w(F.pad(t, [2, 1], "reflect")), [r([1, 2, 4], 45)]);
      gradcheck((t) => w(F.pad(t, [1, 1, 2, 0], "replicate")), [r([1, 1, 2, 3], 46)]);
    }));
});
