// torch.nn.functional equivalents: hand-computed values (float32, 1e-6
// unless stated) and float64 finite-difference gradients for each function.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { F, manualSeed, ones, randn, type Tensor, tensor, tidy, zeros } from "../../src/torch/index.js";
import { assertClose } from "../helpers/close.js";
import { gradcheck } from "../helpers/gradcheck.js";

const tol = { atol: 1e-6, rtol: 1e-6 };
const ids = (xs: number[] | number[][]) => tensor(xs as number[], { dtype: "int64" });

describe("activations and normalization: known values", () => {
  test("gelu exact (x Phi(x)) and tanh approximation; silu; relu; sigmoid; tanh", () =>
    tidy(() => {
      const xs = [-1, 0, 1, 2.5];
      const x = tensor(xs, { dtype: "float64" });
      // Phi(1) = 0.8413447460685429, Phi(-1) = 0.15865525393145707, Phi(2.5) = 0.9937903346742238.
      assertClose(F.gelu(x), [-0.15865525393145707, 0, 0.8413447460685429, 2.5 * 0.9937903346742238], { atol: 1e-12, rtol: 1e-12 });
      const k = Math.sqrt(2 / Math.PI);
      const approx = xs.map((v) => 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v ** 3))));
      assertClose(F.gelu(x, "tanh"), approx, { atol: 1e-12, rtol: 1e-12 });
      assertClose(F.silu(x), xs.map((v) => v / (1 + Math.exp(-v))), { atol: 1e-12, rtol: 1e-12 });
      assert.deepEqual(F.relu(x).toFlatArray(), [0, 0, 1, 2.5]);
      assertClose(F.sigmoid(x), xs.map((v) => 1 / (1 + Math.exp(-v))), { atol: 1e-12, rtol: 1e-12 });
      assertClose(F.tanh(x), xs.map(Math.tanh), { atol: 1e-12, rtol: 1e-12 });
    }));

  test("softmax and logSoftmax along a dim", () =>
    tidy(() => {
      const x = tensor([
        [0, Math.LN2],
        [5, 5],
      ]);
      assertClose(F.softmax(x, -1), [1 / 3, 2 / 3, 0.5, 0.5], tol);
      assertClose(F.logSoftmax(x, 1), [Math.log(1 / 3), Math.log(2 / 3), -Math.LN2, -Math.LN2], tol);
      assertClose(F.softmax(x, 0).sum(0), [1, 1], tol);
      assert.equal(F.softmax(x, -1, "float64").dtype, "float64");
      // Large logits must not overflow.
      assertClose(F.softmax(tensor([1000, 1000]), 0), [0.5, 0.5], tol);
    }));

  test("layerNorm normalizes with the biased variance, then applies weight and bias", () =>
    tidy(() => {
      const x = tensor([
        [1, 2, 3],
        [2, 2, 2],
      ]);
      const s = Math.sqrt(2 / 3 + 1e-5);
      assertClose(F.layerNorm(x, [3]), [-1 / s, 0, 1 / s, 0, 0, 0], { atol: 1e-5, rtol: 1e-5 });
      const y = F.layerNorm(x, [3], tensor([2, 2, 2]), tensor([1, 1, 1]));
      assertClose(y, [1 - 2 / s, 1, 1 + 2 / s, 1, 1, 1], { atol: 1e-5, rtol: 1e-5 });
      assert.deepEqual(F.layerNorm(zeros([2, 3, 4]), [3, 4]).shape, [2, 3, 4]);
    }));

  test("rmsNorm: x / sqrt(mean(x^2) + eps) * weight", () =>
    tidy(() => {
      const x = tensor([[3, 4]]);
      const r = Math.sqrt(12.5 + 1e-6);
      assertClose(F.rmsNorm(x), [3 / r, 4 / r], tol);
      assertClose(F.rmsNorm(x, tensor([2, -1]), 0.5), [6 / Math.sqrt(13), -4 / Math.sqrt(13)], tol);
      const bf = F.rmsNorm(x.bfloat16(), tensor([1, 1], { dtype: "bfloat16" }));
      assert.equal(bf.dtype, "bfloat16", "computed in the input's dtype");
    }));

  test("embedding picks rows; paddingIdx (also negative) gets no gradient", () =>
    tidy(() => {
      const w = tensor([
        [0, 1],
        [2, 3],
        [4, 5],
      ]);
      assert.deepEqual(F.embedding(ids([[2, 0], [1, 1]]), w).toList(), [
        [
          [4, 5],
          [0, 1],
        ],
        [
          [2, 3],
          [2, 3],
        ],
      ]);
      assert.deepEqual(F.embedding(tensor([1, 2], { dtype: "int32" }), w).shape, [2, 2], "int32 ids work too");
      for (const pad of [2, -1]) {
        const wg = w.clone().requiresGrad_(true);
        F.embedding(ids([2, 0, 2]), wg, pad).sum().backward();
        assert.deepEqual(wg.grad!.toList(), [
          [1, 1],
          [0, 0],
          [0, 0],
        ], `paddingIdx ${pad}`);
      }
      assert.throws(() => F.embedding(ids([0]), w, 3), /embedding: paddingIdx 3 is out of range for 3 embeddings/);
    }));

  test("dropout: identity when p = 0 or not training, zeros at p = 1, else 0 or x/(1-p)", () =>
    tidy(() => {
      const x = ones([4000]);
      assert.deepEqual(F.dropout(x, 0).toFlatArray().slice(0, 3), [1, 1, 1]);
      assert.deepEqual(F.dropout(x, 0.9, false).toFlatArray().slice(0, 3), [1, 1, 1]);
      assert.equal(F.dropout(x, 1).sum().item(), 0);
      manualSeed(0);
      const y = F.dropout(x, 0.25).toFlatArray();
      assert.ok(y.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6));
      // Kept fraction: 0.75 +- 4.5 binomial standard deviations (0.007 each).
      const kept = y.filter((v) => v !== 0).length / y.length;
      assert.ok(Math.abs(kept - 0.75) < 0.03, `kept ${kept}`);
      manualSeed(0);
      assert.deepEqual(F.dropout(x, 0.25).toFlatArray(), y, "seeded");
      assert.throws(() => F.dropout(x, 1.5), /dropout: p must be in \[0, 1\], got 1.5/);
    }));
});

describe("attention: known values", () => {
  test("one query over two keys: softmax(q k^T / sqrt(d)) v", () =>
    tidy(() => {
      const q = tensor([[[[1, 0]]]]); // (1, 1, 1, 2)
      const k = tensor([[[[1, 0], [0, 1]]]]);
      const v = tensor([[[[1, 2], [3, 4]]]]);
      const s = 1 / Math.SQRT2;
      const p0 = Math.exp(s) / (Math.exp(s) + 1);
      assertClose(F.scaledDotProductAttention(q, k, v), [p0 * 1 + (1 - p0) * 3, p0 * 2 + (1 - p0) * 4], tol);
      // scale 0 gives uniform weights.
      assertClose(F.scaledDotProductAttention(q, k, v, { scale: 0 }), [2, 3], tol);
    }));

  test("isCausal equals an explicit lower-triangular bool mask and a -inf float mask", () =>
    tidy(() => {
      manualSeed(3);
      const [q, k, v] = [randn([2, 2, 4, 3]), randn([2, 2, 4, 3]), randn([2, 2, 4, 3])];
      const causal = F.scaledDotProductAttention(q, k, v, { isCausal: true });
      const allowed = ones([4, 4]).tril().bool();
      const masked = F.scaledDotProductAttention(q, k, v, { attnMask: allowed });
      assertClose(causal, masked.toFlatArray(), tol);
      const additive = zeros([4, 4]).maskedFill(allowed.logicalNot(), -Infinity);
      assertClose(F.scaledDotProductAttention(q, k, v, { attnMask: additive }), causal.toFlatArray(), tol);
      // The first query sees only the first key.
      assertClose(causal.index([0, 0, 0]), v.index([0, 0, 0]).toFlatArray(), tol);
      assert.throws(() => F.scaledDotProductAttention(q, k, v, { isCausal: true, attnMask: allowed }), /scaledDotProductAttention: pass either attnMask or isCausal/);
    }));

  test("bfloat16 attention with a float32 additive mask stays bfloat16 (within bf16 rounding, 3e-2)", () =>
    tidy(() => {
      manualSeed(4);
      const [q, k, v] = [randn([1, 2, 3, 4]), randn([1, 2, 5, 4]), randn([1, 2, 5, 4])];
      const mask = randn([3, 5]);
      const ref = F.scaledDotProductAttention(q, k, v, { attnMask: mask });
      const out = F.scaledDotProductAttention(q.bfloat16(), k.bfloat16(), v.bfloat16(), { attnMask: mask });
      assert.equal(out.dtype, "bfloat16");
      assertClose(out, ref.toFlatArray(), { atol: 3e-2, rtol: 3e-2 });
    }));
});

describe("losses: known values", () => {
  test("crossEntropy: ln 2 for equal logits; ignored targets drop out of mean and sum", () =>
    tidy(() => {
      assertClose(F.crossEntropy(tensor([[0, 0]]), ids([0])), Math.LN2, tol);
      const logits = tensor([
        [2, 0, 0],
        [0, 0, 0],
        [0, 5, 0],
      ]);
      const lse = Math.log(Math.exp(2) + 2);
      const row0 = lse - 2;
      const target = ids([0, -100, 1]);
      const row2 = Math.log(Math.exp(5) + 2) - 5;
      assertClose(F.crossEntropy(logits, target, { reduction: "none" }), [row0, 0, row2], tol);
      assertClose(F.crossEntropy(logits, target), (row0 + row2) / 2, tol);
      assertClose(F.crossEntropy(logits, target, { reduction: "sum" }), row0 + row2, tol);
      assertClose(F.crossEntropy(logits, ids([0, 1, 1]), { ignoreIndex: 1 }), row0, tol);
      assert.ok(Number.isNaN(F.crossEntropy(logits, ids([-100, -100, -100])).item()), "all ignored: 0/0 = NaN, as PyTorch");
      assert.throws(() => F.crossEntropy(logits, target, { reduction: "avg" as never }), /reduction must be 'none', 'mean' or 'sum', got 'avg'/);
    }));

  test("crossEntropy label smoothing: (1-e) nll + e mean(-log p)", () =>
    tidy(() => {
      const lse = Math.log(Math.E + 2);
      const e = 0.3;
      const expected = (1 - e) * (lse - 1) + e * (lse - 1 / 3);
      assertClose(F.crossEntropy(tensor([[1, 0, 0]]), ids([0]), { labelSmoothing: e }), expected, tol);
    }));

  test("nllLoss, mseLoss, oneHot", () =>
    tidy(() => {
      const lp = tensor([
        [-1, -2],
        [-3, -4],
      ]);
      assertClose(F.nllLoss(lp, ids([1, 0])), 2.5, tol);
      assertClose(F.nllLoss(lp, ids([1, -100]), { reduction: "sum" }), 2, tol);
      assertClose(F.mseLoss(tensor([1, 2]), tensor([2, 4])), 2.5, tol);
      assertClose(F.mseLoss(tensor([1, 2]), tensor([2, 4]), "none"), [1, 4], tol);
      assert.deepEqual(F.oneHot(ids([2, 0]), 3).toList(), [
        [0, 0, 1],
        [1, 0, 0],
      ]);
    }));
});

describe("functional: gradients (float64 finite differences)", () => {
  const r = (shape: number[], seed: number) => {
    manualSeed(seed);
    return randn(shape, { dtype: "float64" });
  };

  test("activations: softmax, logSoftmax, silu, gelu (both), relu, sigmoid, tanh", () =>
    tidy(() => {
      const x = r([2, 5], 101);
      const fns: [string, (t: Tensor) => Tensor][] = [
        ["softmax", (t) => F.softmax(t, -1)],
        ["softmax0", (t) => F.softmax(t, 0)],
        ["logSoftmax", (t) => F.logSoftmax(t, 1)],
        ["silu", F.silu],
        ["gelu", (t) => F.gelu(t)],
        ["geluTanh", (t) => F.gelu(t, "tanh")],
        ["relu", F.relu],
        ["sigmoid", F.sigmoid],
        ["tanh", F.tanh],
      ];
      for (const [name, fn] of fns) {
        try {
          gradcheck(fn, [x]);
        } catch (e) {
          throw new Error(`${name}: ${(e as Error).message}`);
        }
      }
    }));

  test("embedding (weight), layerNorm (x, weight, bias), rmsNorm composite (x, weight)", () =>
    tidy(() => {
      gradcheck((w) => F.embedding(ids([[0, 2], [2, 3]]), w).square(), [r([4, 3], 102)]);
      gradcheck((x, w, b) => F.layerNorm(x, [4], w, b), [r([2, 3, 4], 104), r([4], 105), r([4], 106)]);
      gradcheck((x) => F.layerNorm(x, [3, 4]), [r([2, 3, 4], 107)]);
      gradcheck((x, w) => F.rmsNorm(x, w, 1e-6), [r([2, 3, 4], 108), r([4], 109)]);
    }));

  test("scaledDotProductAttention: plain, causal, bool mask, float mask (mask gets a gradient too)", () =>
    tidy(() => {
      const q = r([1, 2, 3, 2], 110);
      const k = r([1, 2, 4, 2], 111);
      const v = r([1, 2, 4, 2], 112);
      gradcheck((a, b, c) => F.scaledDotProductAttention(a, b, c), [q, k, v]);
      gradcheck((a, b, c) => F.scaledDotProductAttention(a, b, c, { isCausal: true }), [q, k, v]);
      const mask = tensor([
        [true, false, true, true],
        [true, true, false, false],
        [false, false, true, true],
      ]);
      gradcheck((a, b, c) => F.scaledDotProductAttention(a, b, c, { attnMask: mask, scale: 0.7 }), [q, k, v]);
      gradcheck((a, b, c, m) => F.scaledDotProductAttention(a, b, c, { attnMask: m }), [q, k, v, r([1, 1, 3, 4], 113)]);
    }));

  test("crossEntropy with ignore index, label smoothing, class weights, (N, C, d) logits; nllLoss; mseLoss", () =>
    tidy(() => {
      const target = ids([1, -100, 3, 0]);
      gradcheck((l) => F.crossEntropy(l, target), [r([4, 5], 114)]);
      gradcheck((l) => F.crossEntropy(l, target, { reduction: "sum", labelSmoothing: 0.2 }), [r([4, 5], 115)]);
      const cw = tensor([1, 2, 0.5, 1.5, 1], { dtype: "float64" });
      gradcheck((l) => F.crossEntropy(l, target, { weight: cw, labelSmoothing: 0.1 }), [r([4, 5], 116)]);
      gradcheck((l) => F.crossEntropy(l, ids([[0, -100, 2], [1, 1, 0]]), { reduction: "none" }), [r([2, 3, 3], 117)]);
      gradcheck((l) => F.nllLoss(F.logSoftmax(l, 1), target), [r([4, 5], 118)]);
      gradcheck((a, b) => F.mseLoss(a, b), [r([3, 2], 119), r([3, 2], 120)]);
    }));
});
