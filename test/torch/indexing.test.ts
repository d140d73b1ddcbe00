// Indexing, slicing, gather/scatter, masking, sorting and sampling: known
// values (NumPy/PyTorch semantics) and float64 finite-difference gradients.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { arange, Generator, liveTensors, manualSeed, randn, sl, type Tensor, tensor, tidy, where } from "../../src/torch/index.js";
import { gradcheck } from "../helpers/gradcheck.js";

// 0..11 as float32, shape (3, 4).
const m = (): Tensor => arange(12).float().view(3, 4);
const ids = (xs: number[] | number[][]) => tensor(xs as number[], { dtype: "int64" });

describe("indexing and slicing", () => {
  test("select and slice (views, negative indices, steps, open ends)", () =>
    tidy(() => {
      const x = m();
      assert.deepEqual(x.select(0, 1).toFlatArray(), [4, 5, 6, 7]);
      assert.deepEqual(x.select(1, -1).toFlatArray(), [3, 7, 11]);
      assert.deepEqual(x.slice(1, 1, 3).toList(), [
        [1, 2],
        [5, 6],
        [9, 10],
      ]);
      assert.deepEqual(x.slice(1, undefined, undefined, 2).toList(), [
        [0, 2],
        [4, 6],
        [8, 10],
      ]);
      assert.deepEqual(x.slice(0, -1).toList(), [[8, 9, 10, 11]]);
      x.slice(0, 0, 1).fill_(-1); // a slice is a view
      assert.deepEqual(x.select(0, 0).toFlatArray(), [-1, -1, -1, -1]);
    }));

  test("index(): numbers, ranges, null, '...', int and bool tensors", () =>
    tidy(() => {
      const x = m();
      assert.equal(x.index([1, 2]).item(), 6);
      assert.deepEqual(x.index([-1]).toFlatArray(), [8, 9, 10, 11]);
      assert.deepEqual(x.index([sl(), 0]).toFlatArray(), [0, 4, 8]);
      assert.deepEqual(x.index([sl(1), sl(0, 4, 3)]).toList(), [
        [4, 7],
        [8, 11],
      ]);
      assert.deepEqual(x.index([null]).shape, [1, 3, 4]);
      assert.deepEqual(x.index([sl(), null, 1]).shape, [3, 1]);
      assert.deepEqual(x.index(["...", 1]).toFlatArray(), [1, 5, 9]);
      assert.deepEqual(x.index(["...", null]).shape, [3, 4, 1]);
      assert.deepEqual(x.index([ids([2, 0])]).toList(), [
        [8, 9, 10, 11],
        [0, 1, 2, 3],
      ]);
      assert.deepEqual(x.index([ids([0, 2]), ids([1, 3])]).toFlatArray(), [1, 11], "paired advanced indices");
      assert.deepEqual(x.index([sl(), ids([3, 3])]).toList(), [
        [3, 3],
        [7, 7],
        [11, 11],
      ]);
      assert.deepEqual(x.index([tensor([true, false, true])]).shape, [2, 4]);
      const mask = x.gt(8.5);
      assert.deepEqual(x.index([mask]).toFlatArray(), [9, 10, 11], "a 2-d mask picks elements");
      const cube = arange(24).view(2, 3, 4);
      assert.deepEqual(cube.index(["...", mask]).shape, [2, 3], "'...' before a 2-d mask leaves one dim");
      assert.deepEqual(cube.index([1, "...", 0]).toFlatArray(), [12, 16, 20]);
      assert.equal(x.index([]).isSameTensor(x), false, "an empty spec gives a new handle (an alias)");
    }));

  test("index() frees its intermediates, also when it throws", () =>
    tidy(() => {
      const x = m();
      const before = liveTensors();
      const y = x.index([1, sl(1, 3)]);
      assert.equal(liveTensors(), before + 1);
      y.dispose();
      assert.throws(() => x.index([sl(0, 2), 7]), /index: index 7 is out of range for dimension 1 of size 4/);
      assert.equal(liveTensors(), before);
    }));

  test("indexSelect, gather, scatter, scatterAdd, indexPut", () =>
    tidy(() => {
      const x = m();
      assert.deepEqual(x.indexSelect(1, ids([3, 0, 3])).toList(), [
        [3, 0, 3],
        [7, 4, 7],
        [11, 8, 11],
      ]);
      assert.deepEqual(x.gather(1, ids([[0, 0], [1, 3], [2, 1]])).toList(), [
        [0, 0],
        [5, 7],
        [10, 9],
      ]);
      const z = tensor([
        [0, 0, 0],
        [0, 0, 0],
      ]);
      assert.deepEqual(z.scatter(1, ids([[2], [0]]), tensor([[5], [6]])).toList(), [
        [0, 0, 5],
        [6, 0, 0],
      ]);
      assert.deepEqual(z.scatter(0, ids([[1, 0, 1]]), 7).toList(), [
        [0, 7, 0],
        [7, 0, 7],
      ]);
      assert.deepEqual(z.scatterAdd(1, ids([[1, 1], [2, 2]]), tensor([[1, 2], [3, 4]])).toList(), [
        [0, 3, 0],
        [0, 0, 7],
      ]);
      assert.deepEqual(z.toList(), [
        [0, 0, 0],
        [0, 0, 0],
      ], "scatter and scatterAdd are out of place");
      const v = tensor([0, 0, 0]);
      assert.deepEqual(v.indexPut([ids([0, 2])], tensor([4, 5])).toFlatArray(), [4, 0, 5]);
      assert.deepEqual(v.indexPut([ids([1, 1])], tensor([1, 2]), true).toFlatArray(), [0, 3, 0]);
    }));

  test("maskedFill (broadcast mask), maskedFill_, maskedSelect, nonzero", () =>
    tidy(() => {
      const x = m();
      const rowMask = tensor([true, false, false, true]);
      assert.deepEqual(x.maskedFill(rowMask, -Infinity).select(0, 0).toFlatArray(), [-Infinity, 1, 2, -Infinity]);
      const i = tensor([1n, 2n]).maskedFill(tensor([false, true]), 9);
      assert.equal(i.dtype, "int64");
      assert.deepEqual(i.toFlatArray(), [1, 9]);
      const y = tensor([1, 2, 3]);
      assert.equal(y.maskedFill_(tensor([true, false, true]), 0), y);
      assert.deepEqual(y.toFlatArray(), [0, 2, 0]);
      assert.deepEqual(x.maskedSelect(x.remainder(5).eq(0)).toFlatArray(), [0, 5, 10]);
      assert.deepEqual(tensor([0, 3, 0, 1]).nonzero().toList(), [[1], [3]]);
    }));
});

describe("sorting and sampling", () => {
  test("topk (largest and smallest), sort (stable with ties), argsort", () =>
    tidy(() => {
      const x = tensor([3, 1, 4, 1, 5, 9, 2, 6]);
      const top = x.topk(3);
      assert.deepEqual(top.values.toFlatArray(), [9, 6, 5]);
      assert.deepEqual(top.indices.toFlatArray(), [5, 7, 4]);
      assert.deepEqual(x.topk(2, 0, false).values.toFlatArray(), [1, 1]);
      const s = x.sort(0, false, true);
      assert.deepEqual(s.values.toFlatArray(), [1, 1, 2, 3, 4, 5, 6, 9]);
      assert.deepEqual(s.indices.toFlatArray(), [1, 3, 6, 0, 2, 4, 7, 5], "stable: tied 1s keep their order");
      assert.deepEqual(x.sort(0, true).values.toFlatArray(), [9, 6, 5, 4, 3, 2, 1, 1]);
      assert.deepEqual(x.argsort(0, true).toFlatArray().slice(0, 2), [5, 7]);
      const rows = tensor([
        [2, 1],
        [0, 5],
      ]);
      assert.deepEqual(rows.sort().indices.toList(), [
        [1, 0],
        [0, 1],
      ]);
    }));

  test("multinomial: never picks zero-probability classes, is seeded, takes a Generator", () =>
    tidy(() => {
      const p = tensor([
        [0, 1, 0, 3],
        [2, 0, 0, 0],
      ]);
      manualSeed(0);
      const a = p.multinomial(50, true);
      assert.deepEqual(a.shape, [2, 50]);
      assert.equal(a.dtype, "int64");
      const rows = a.toList() as number[][];
      assert.ok(rows[0].every((c) => c === 1 || c === 3));
      assert.ok(rows[1].every((c) => c === 0));
      manualSeed(0);
      assert.deepEqual(p.multinomial(50, true).toList(), rows);
      const w = p.select(0, 0).multinomial(2, false).toFlatArray();
      assert.deepEqual(w.sort(), [1, 3], "without replacement both non-zero classes appear once");
      const g1 = tensor([1, 1, 1, 1]).multinomial(10, true, new Generator(5)).toFlatArray();
      const g2 = tensor([1, 1, 1, 1]).multinomial(10, true, new Generator(5)).toFlatArray();
      assert.deepEqual(g1, g2);
    }));
});

describe("indexing: gradients (float64 finite differences)", () => {
  const r = (shape: number[], seed: number) => {
    manualSeed(seed);
    return randn(shape, { dtype: "float64" });
  };

  test("select, slice, index (mixed basic and advanced)", () =>
    tidy(() => {
      gradcheck((t) => t.select(1, 2).mul(t.select(0, 0).sum()), [r([3, 4], 51)]);
      gradcheck((t) => t.slice(1, 1, 4, 2).exp(), [r([3, 4], 52)]);
      gradcheck((t) => t.index([sl(1), ids([0, 0, 3])]).square(), [r([3, 4], 53)]);
      gradcheck((t) => t.index([t.gt(0)]).exp(), [r([3, 4], 54)]);
    }));

  test("indexSelect, gather, scatter, scatterAdd, indexPut", () =>
    tidy(() => {
      gradcheck((t) => t.indexSelect(0, ids([2, 0, 2])).square(), [r([3, 2], 55)]);
      gradcheck((t) => t.gather(1, ids([[0, 0], [1, 3], [2, 1]])).exp(), [r([3, 4], 56)]);
      // scatter: the result takes src where written, self elsewhere; both get gradients.
      gradcheck((s, src) => s.scatter(1, ids([[2], [0]]), src).square(), [r([2, 3], 57), r([2, 1], 58)]);
      gradcheck((s, src) => s.scatterAdd(1, ids([[1, 1], [2, 2]]), src).square(), [r([2, 3], 59), r([2, 2], 60)]);
      gradcheck((s, v) => s.indexPut([ids([1, 1])], v, true).square(), [r([3], 61), r([2], 62)]);
    }));

  test("maskedFill, where, topk and sort values", () =>
    tidy(() => {
      const mask = tensor([[true, false, false], [false, true, false]]);
      gradcheck((t) => t.maskedFill(mask, 2).exp(), [r([2, 3], 63)]);
      gradcheck((a, b) => where(mask, a, b).square(), [r([2, 3], 64), r([3], 65)]);
      gradcheck((t) => t.topk(2, 1).values.exp(), [r([2, 5], 66)]);
      gradcheck((t) => t.sort(1, true).values.mul(arange(5, { dtype: "float64" })), [r([2, 5], 67)]);
    }));
});
