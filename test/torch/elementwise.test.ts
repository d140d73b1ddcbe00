// Elementwise math and comparisons: known values, broadcasting, scalar
// promotion, in-place forms, and float64 finite-difference gradients
// (tolerances in test/helpers/gradcheck.ts). Float32 known values: 1e-6.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { manualSeed, randn, type Tensor, tensor, tidy, where } from "../../src/torch/index.js";
import { assertClose } from "../helpers/close.js";
import { gradcheck } from "../helpers/gradcheck.js";

const tol = { atol: 1e-6, rtol: 1e-6 };

describe("binary ops", () => {
  test("broadcasting (2,1) with (3) gives (2,3); scalars on either side", () =>
    tidy(() => {
      const a = tensor([[1], [2]]);
      const b = tensor([10, 20, 30]);
      assert.deepEqual(a.add(b).toList(), [
        [11, 21, 31],
        [12, 22, 32],
      ]);
      assert.deepEqual(a.sub(b, 2).toList(), [
        [-19, -39, -59],
        [-18, -38, -58],
      ]);
      assert.deepEqual(a.mul(b).toList(), [
        [10, 20, 30],
        [20, 40, 60],
      ]);
      assert.deepEqual(b.div(a).toList(), [
        [10, 20, 30],
        [5, 10, 15],
      ]);
      assert.deepEqual(b.add(1, 3).toFlatArray(), [13, 23, 33]);
      assert.deepEqual(b.sub(0.5).toFlatArray(), [9.5, 19.5, 29.5]);
      assert.deepEqual(b.mul(-1).toFlatArray(), [-10, -20, -30]);
      assert.deepEqual(b.div(4).toFlatArray(), [2.5, 5, 7.5]);
      assert.deepEqual(tensor([2, 3]).pow(3).toFlatArray(), [8, 27]);
      assert.deepEqual(tensor([2, 3]).pow(tensor([0.5, -1])).toFlatArray().map((x) => Math.fround(x)), [Math.fround(Math.SQRT2), Math.fround(1 / 3)]);
      assert.deepEqual(tensor([1, 5]).maximum(tensor([3, 2])).toFlatArray(), [3, 5]);
      assert.deepEqual(tensor([1, 5]).minimum(tensor([3, 2])).toFlatArray(), [1, 2]);
    }));

  test("division and remainder follow Python's rounding (trunc / floor, sign of divisor)", () =>
    tidy(() => {
      const n = tensor([7n, -7n]);
      assert.deepEqual(n.div(2).toFlatArray(), [3.5, -3.5], "true division of ints gives float");
      assert.equal(n.div(2).dtype, "float32");
      assert.deepEqual(n.div(2, "trunc").toFlatArray(), [3, -3]);
      assert.deepEqual(n.div(2, "floor").toFlatArray(), [3, -4]);
      assert.equal(n.div(2, "floor").dtype, "int64");
      assert.deepEqual(n.div(tensor([2n, 2n]), "floor").toFlatArray(), [3, -4]);
      assert.deepEqual(tensor([-7, 7]).remainder(3).toFlatArray(), [2, 1]);
      assert.deepEqual(tensor([7, 7]).remainder(tensor([-3, 3])).toFlatArray(), [-2, 1]);
    }));

  test("scalar promotion: a number does not widen a float16 tensor; a fraction makes int64 float", () =>
    tidy(() => {
      assert.equal(tensor([1, 2], { dtype: "float16" }).add(1.5).dtype, "float16");
      assert.equal(tensor([1, 2], { dtype: "bfloat16" }).mul(3).dtype, "bfloat16");
      assert.equal(tensor([1n, 2n]).add(1).dtype, "int64");
      const p = tensor([1n, 2n]).add(1.5);
      assert.equal(p.dtype, "float32");
      assert.deepEqual(p.toFlatArray(), [2.5, 3.5]);
      assert.equal(tensor([1, 2], { dtype: "float64" }).add(tensor([1, 2])).dtype, "float64", "tensor-tensor promotion");
      assert.equal(tensor([1n]).add(tensor([1], { dtype: "int32" })).dtype, "int64");
    }));
});

describe("unary ops", () => {
  test("match Math.* on sample points (float64)", () =>
    tidy(() => {
      const xs = [0.3, 1.7, 2.5];
      const x = tensor(xs, { dtype: "float64" });
      const cases: [string, (t: Tensor) => Tensor, (v: number) => number][] = [
        ["neg", (t) => t.neg(), (v) => -v],
        ["abs", (t) => t.neg().abs(), (v) => v],
        ["exp", (t) => t.exp(), Math.exp],
        ["log", (t) => t.log(), Math.log],
        ["log1p", (t) => t.log1p(), Math.log1p],
        ["expm1", (t) => t.expm1(), Math.expm1],
        ["sqrt", (t) => t.sqrt(), Math.sqrt],
        ["rsqrt", (t) => t.rsqrt(), (v) => 1 / Math.sqrt(v)],
        ["square", (t) => t.square(), (v) => v * v],
        ["reciprocal", (t) => t.reciprocal(), (v) => 1 / v],
        ["sin", (t) => t.sin(), Math.sin],
        ["cos", (t) => t.cos(), Math.cos],
        ["tanh", (t) => t.tanh(), Math.tanh],
        ["sigmoid", (t) => t.sigmoid(), (v) => 1 / (1 + Math.exp(-v))],
        ["relu", (t) => t.sub(1).relu(), (v) => Math.max(v - 1, 0)],
        ["sign", (t) => t.sub(1).sign(), (v) => Math.sign(v - 1)],
        ["floor", (t) => t.floor(), Math.floor],
        ["ceil", (t) => t.ceil(), Math.ceil],
      ];
      for (const [name, op, ref] of cases) assertClose(op(x), xs.map(ref), { atol: 1e-12, rtol: 1e-12 }, name);
      // round: halves to even, as torch.round.
      assert.deepEqual(tensor([0.5, 1.5, 2.5, -0.5]).round().toFlatArray(), [0, 2, 2, -0]);
    }));

  test("clamp: both bounds, one bound, and int64 stays int64", () =>
    tidy(() => {
      const x = tensor([-2, 0.5, 3]);
      assert.deepEqual(x.clamp(-1, 1).toFlatArray(), [-1, 0.5, 1]);
      assert.deepEqual(x.clamp(0).toFlatArray(), [0, 0.5, 3]);
      assert.deepEqual(x.clamp(null, 0).toFlatArray(), [-2, 0, 0]);
      const i = tensor([1n, 5n, 9n]).clamp(2, 6);
      assert.equal(i.dtype, "int64");
      assert.deepEqual(i.toFlatArray(), [2, 5, 6]);
      assert.throws(() => x.clamp(), /clamp: at least one of min and max/);
    }));
});

describe("comparisons and logic", () => {
  test("comparisons broadcast and give bool", () =>
    tidy(() => {
      const a = tensor([1, 2, 3]);
      const b = tensor([[2], [3]]);
      const lt = a.lt(b);
      assert.equal(lt.dtype, "bool");
      assert.deepEqual(lt.toList(), [
        [true, false, false],
        [true, true, false],
      ]);
      assert.deepEqual(a.eq(2).toList(), [false, true, false]);
      assert.deepEqual(a.ne(2).toList(), [true, false, true]);
      assert.deepEqual(a.le(2).toList(), [true, true, false]);
      assert.deepEqual(a.gt(2).toList(), [false, false, true]);
      assert.deepEqual(a.ge(tensor([1, 3, 3])).toList(), [true, false, true]);
      const p = tensor([true, true, false]);
      const q = tensor([true, false, false]);
      assert.deepEqual(p.logicalAnd(q).toList(), [true, false, false]);
      assert.deepEqual(p.logicalOr(q).toList(), [true, true, false]);
      assert.deepEqual(p.logicalNot().toList(), [false, false, true]);
      const weird = tensor([NaN, Infinity, 1]);
      assert.deepEqual(weird.isnan().toList(), [true, false, false]);
      assert.deepEqual(weird.isfinite().toList(), [false, false, true]);
    }));

  test("where broadcasts; numbers promote as in PyTorch", () =>
    tidy(() => {
      const c = tensor([true, false]);
      assert.deepEqual(where(c, tensor([[1, 2]]), tensor([[10], [20]])).toList(), [
        [1, 10],
        [1, 20],
      ]);
      const ints = where(c, 1, 0);
      assert.equal(ints.dtype, "int64");
      assert.deepEqual(ints.toFlatArray(), [1, 0]);
      const mixed = where(c, 1.5, 0);
      assert.equal(mixed.dtype, "float32");
      assert.deepEqual(mixed.toFlatArray(), [1.5, 0]);
      const keep = where(c, tensor([1n, 5n]), 0);
      assert.equal(keep.dtype, "int64");
      assert.deepEqual(keep.toFlatArray(), [1, 0]);
      assert.deepEqual(where(c, 0.5, tensor([1n, 5n])).toFlatArray(), [0.5, 5]);
      assert.equal(where(c, tensor([1, 2], { dtype: "float16" }), 0.5).dtype, "float16");
    }));
});

describe("in-place ops return this and mutate", () => {
  test("add_, sub_, mul_, div_, clamp_, fill_, zero_, copy_", () =>
    tidy(() => {
      const t = tensor([1, 2, 3]);
      assert.equal(t.add_(1), t);
      assert.deepEqual(t.toFlatArray(), [2, 3, 4]);
      t.sub_(tensor([1, 1, 1]), 2).mul_(2).div_(tensor([1, 2, 4]));
      assert.deepEqual(t.toFlatArray(), [0, 1, 1]);
      t.clamp_(0.5, 0.75);
      assert.deepEqual(t.toFlatArray(), [0.5, 0.75, 0.75]);
      t.fill_(9);
      assert.deepEqual(t.toFlatArray(), [9, 9, 9]);
      t.zero_();
      assert.deepEqual(t.toFlatArray(), [0, 0, 0]);
      const m = tensor([
        [0, 0],
        [0, 0],
      ]);
      m.copy_(tensor([1, 2])); // broadcasts the source
      assert.deepEqual(m.toList(), [
        [1, 2],
        [1, 2],
      ]);
    }));

  test("addcmul_, addcdiv_, lerp_, sqrt_ (optimizer building blocks)", () =>
    tidy(() => {
      const t = tensor([1, 1]);
      t.addcmul_(tensor([2, 3]), tensor([4, 5]), 0.5);
      assertClose(t, [5, 8.5], tol);
      t.addcdiv_(tensor([1, 1]), tensor([2, 4]), 2);
      assertClose(t, [6, 9], tol);
      t.lerp_(tensor([10, 10]), 0.25);
      assertClose(t, [7, 9.25], tol);
      tensor([4, 9]).sqrt_();
      const s = tensor([4, 9]);
      s.sqrt_();
      assertClose(s, [2, 3], tol);
    }));

  test("uniform_ and normal_ fill under the seed", () =>
    tidy(() => {
      manualSeed(5);
      const u = tensor(new Float32Array(1000)).uniform_(-2, -1);
      assert.ok(u.toFlatArray().every((x) => x >= -2 && x < -1));
      const n = tensor(new Float64Array(4000)).normal_(3, 0.5);
      assert.ok(Math.abs(n.mean().itemNumber() - 3) < 0.05);
      assert.ok(Math.abs(n.std().itemNumber() - 0.5) < 0.05);
    }));
});

describe("gradients (float64 finite differences)", () => {
  const r = (shape: number[], seed: number) => {
    manualSeed(seed);
    return randn(shape, { dtype: "float64" });
  };
  // Positive inputs for log/sqrt/pow; values kept away from kinks.
  const pos = (shape: number[], seed: number) => r(shape, seed).abs().add(0.5);

  test("binary: add/sub/mul/div/pow/maximum/minimum with broadcasting", () =>
    tidy(() => {
      const a = r([2, 3], 1);
      const b = r([3], 2);
      gradcheck((x, y) => x.add(y, 0.7), [a, b]);
      gradcheck((x, y) => x.sub(y, 2), [a, b]);
      gradcheck((x, y) => x.mul(y), [a, b]);
      gradcheck((x, y) => x.div(y), [a, pos([3], 3)]);
      gradcheck((x, y) => x.pow(y), [pos([2, 3], 4), b]);
      gradcheck((x) => x.pow(3).add(x.mul(2.5)).sub(1).div(4), [a]);
      // maximum/minimum: inputs differ by at least 0.5 everywhere (no ties).
      gradcheck((x, y) => x.maximum(y).add(x.minimum(y).mul(3)), [a, a.add(tensor([0.5, -0.7, 1], { dtype: "float64" }))]);
    }));

  test("unary math", () =>
    tidy(() => {
      const a = r([5], 5);
      const p = pos([5], 6);
      const fns: [string, (t: Tensor) => Tensor, Tensor][] = [
        ["neg", (t) => t.neg(), a],
        ["abs", (t) => t.abs(), p],
        ["exp", (t) => t.exp(), a],
        ["log", (t) => t.log(), p],
        ["log1p", (t) => t.log1p(), p],
        ["expm1", (t) => t.expm1(), a],
        ["sqrt", (t) => t.sqrt(), p],
        ["rsqrt", (t) => t.rsqrt(), p],
        ["square", (t) => t.square(), a],
        ["reciprocal", (t) => t.reciprocal(), p],
        ["sin", (t) => t.sin(), a],
        ["cos", (t) => t.cos(), a],
        ["tanh", (t) => t.tanh(), a],
        ["sigmoid", (t) => t.sigmoid(), a],
        ["relu", (t) => t.relu(), tensor([-1.5, -0.3, 0.2, 1.1, 2], { dtype: "float64" })],
        ["clamp", (t) => t.clamp(-0.5, 0.5), tensor([-1.5, -0.3, 0.2, 1.1, 0.45], { dtype: "float64" })],
      ];
      for (const [name, fn, x] of fns) {
        try {
          gradcheck(fn, [x]);
        } catch (e) {
          throw new Error(`${name}: ${(e as Error).message}`);
        }
      }
    }));

  test("where with tensor branches", () =>
    tidy(() => {
      const c = tensor([[true, false, true]]);
      gradcheck((x, y) => where(c, x, y).mul(x), [r([2, 3], 7), r([2, 1], 8)]);
      gradcheck((x) => where(c, x, 0.5), [r([2, 3], 9)]);
    }));
});
