// Reductions over all elements or dims, with keepdim: hand-computed values
// (float32, 1e-6) and float64 finite-difference gradients.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { manualSeed, randn, tensor, tidy } from "../../src/torch/index.js";
import { assertClose } from "../helpers/close.js";
import { gradcheck } from "../helpers/gradcheck.js";

const tol = { atol: 1e-6, rtol: 1e-6 };
// [[1, 2, 3], [4, 5, 9]]
const m = () =>
  tensor([
    [1, 2, 3],
    [4, 5, 9],
  ]);

describe("reductions: known values", () => {
  test("sum, mean, prod over all / dims / several dims, with keepdim", () =>
    tidy(() => {
      const x = m();
      assert.equal(x.sum().item(), 24);
      assert.deepEqual(x.sum().shape, []);
      assert.deepEqual(x.sum(0).toFlatArray(), [5, 7, 12]);
      assert.deepEqual(x.sum(1, true).toList(), [[6], [18]]);
      assert.deepEqual(x.sum([0, 1]).shape, []);
      assert.deepEqual(x.sum(-1).toFlatArray(), [6, 18]);
      assert.equal(x.mean().item(), 4);
      assert.deepEqual(x.mean(0, true).toList(), [[2.5, 3.5, 6]]);
      assert.equal(x.prod().item(), 1080);
      assert.deepEqual(x.prod(1).toFlatArray(), [6, 180]);
      assert.deepEqual(x.prod(1, true).shape, [2, 1]);
      // Integer sums stay int64; an explicit dtype widens.
      const i = tensor([1n, 2n]);
      assert.equal(i.sum().dtype, "int64");
      assert.equal(tensor([1, 2], { dtype: "float16" }).sum(undefined, false, "float64").dtype, "float64");
    }));

  test("max/min: all elements, or values and indices along a dim; amax/amin; argmax/argmin", () =>
    tidy(() => {
      const x = m();
      assert.equal(x.max().item(), 9);
      assert.equal(x.min().item(), 1);
      const { values, indices } = x.max(1);
      assert.deepEqual(values.toFlatArray(), [3, 9]);
      assert.deepEqual(indices.toFlatArray(), [2, 2]);
      assert.equal(indices.dtype, "int64");
      const mn = x.min(0, true);
      assert.deepEqual(mn.values.toList(), [[1, 2, 3]]);
      assert.deepEqual(mn.indices.toList(), [[0, 0, 0]]);
      assert.deepEqual(x.amax(0).toFlatArray(), [4, 5, 9]);
      assert.deepEqual(x.amin([0, 1], true).toList(), [[1]]);
      assert.equal(x.argmax().item(), 5, "argmax without dim indexes the flattened tensor");
      assert.deepEqual(x.argmax(0).toFlatArray(), [1, 1, 1]);
      assert.deepEqual(x.argmin(1, true).toList(), [[0], [0]]);
    }));

  test("logsumexp is stable for large inputs and equals log(sum(exp)) for small ones", () =>
    tidy(() => {
      assertClose(tensor([1000, 1000]).logsumexp(0), 1000 + Math.LN2, tol);
      const x = m();
      const ref = [
        [1, 2, 3],
        [4, 5, 9],
      ].map((row) => Math.log(row.reduce((s, v) => s + Math.exp(v), 0)));
      assertClose(x.logsumexp(1), ref, tol);
      assert.deepEqual(x.logsumexp(1, true).shape, [2, 1]);
      assert.deepEqual(x.logsumexp([0, 1]).shape, []);
    }));

  test("var and std: Bessel's correction by default, any correction, dims, keepdim", () =>
    tidy(() => {
      const x = tensor([1, 2, 3, 4]);
      // mean 2.5, squared deviations sum to 5.
      assertClose(x.var(), 5 / 3, tol);
      assertClose(x.var(0, false, 0), 5 / 4, tol);
      assertClose(x.var(undefined, false, 2), 5 / 2, tol);
      assertClose(x.std(), Math.sqrt(5 / 3), tol);
      assertClose(x.std(0, false, 0), Math.sqrt(5 / 4), tol);
      const y = m();
      // rows: [1,2,3] -> var 1; [4,5,9] -> mean 6, deviations 4+1+9 = 14 -> 7.
      assertClose(y.var(1), [1, 7], tol);
      assert.deepEqual(y.var(1, true).shape, [2, 1]);
      assertClose(y.std(0, true), [1.5, 1.5, 3].map((h) => Math.sqrt(2 * h * h)), tol, "std(0)");
      // mean 4: squared deviations 9, 4, 1, 0, 1, 25.
      assertClose(y.var([0, 1], false, 0), 40 / 6, tol, "var over both dims");
    }));

  test("norm, all, any, cumsum", () =>
    tidy(() => {
      assertClose(tensor([3, 4]).norm(), 5, tol);
      assertClose(tensor([3, -4]).norm(1), 7, tol);
      assertClose(
        tensor([
          [3, 4],
          [6, 8],
        ]).norm(2, 1),
        [5, 10],
        tol,
      );
      assert.equal(tensor([true, true]).all().item() as unknown, true);
      assert.equal(tensor([true, false]).all().item() as unknown, false);
      assert.equal(tensor([false, true]).any().item() as unknown, true);
      assert.deepEqual(m().cumsum(1).toList(), [
        [1, 3, 6],
        [4, 9, 18],
      ]);
      assert.deepEqual(m().cumsum(0).toList(), [
        [1, 2, 3],
        [5, 7, 12],
      ]);
      const c = tensor([1n, 2n, 3n]).cumsum(0);
      assert.equal(c.dtype, "int64");
      assert.deepEqual(c.toFlatArray(), [1, 3, 6]);
      assert.equal(tensor([1, 2]).cumsum(0, "float64").dtype, "float64");
    }));
});

describe("reductions: gradients (float64 finite differences)", () => {
  const x = () => {
    manualSeed(21);
    return randn([3, 4], { dtype: "float64" });
  };

  test("sum, mean, prod over dims with keepdim", () =>
    tidy(() => {
      gradcheck((t) => t.sum(), [x()]);
      gradcheck((t) => t.sum(1, true).mul(t), [x()]);
      gradcheck((t) => t.mean([0, 1]), [x()]);
      gradcheck((t) => t.mean(0).mul(t.mean(0)), [x()]);
      gradcheck((t) => t.prod(1), [x()]);
      gradcheck((t) => t.prod(), [x()]);
    }));

  test("max/min values, amax/amin (randn inputs have no ties)", () =>
    tidy(() => {
      gradcheck((t) => t.max(), [x()]);
      gradcheck((t) => t.max(1).values, [x()]);
      gradcheck((t) => t.min(0, true).values, [x()]);
      gradcheck((t) => t.amax(1), [x()]);
      gradcheck((t) => t.amin([0, 1]), [x()]);
    }));

  test("logsumexp, var, std (several corrections), norm, cumsum", () =>
    tidy(() => {
      gradcheck((t) => t.logsumexp(1), [x()]);
      gradcheck((t) => t.logsumexp([0, 1], true), [x()]);
      gradcheck((t) => t.var(), [x()]);
      gradcheck((t) => t.var(1, true, 0), [x()]);
      gradcheck((t) => t.var(0, false, 2), [x()]);
      gradcheck((t) => t.std(), [x()]);
      gradcheck((t) => t.std(1, false, 0), [x()]);
      gradcheck((t) => t.norm(), [x()]);
      gradcheck((t) => t.norm(2, 1, true), [x()]);
      gradcheck((t) => t.cumsum(1), [x()]);
      gradcheck((t) => t.cumsum(0).exp(), [x()]);
    }));
});
