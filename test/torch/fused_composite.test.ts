// The libtorch 2.x fast paths against the composite ones they replace:
// fused scaled-dot-product attention (aten::scaled_dot_product_attention,
// libtorch >= 2.0) and aten::rms_norm (>= 2.4) must agree with the
// elementary-op paths that libtorch 1.13 runs, for the shapes and masks the
// models use (decoder padding + causal masks from decoderMask, top-left
// causal, SigLIP's patch mask, grouped-query attention in prefill and in
// single-token decoding). On libtorch 1.13 the fused-vs-composite cases skip
// (there is nothing fused to compare) and the float64-reference cases run.
//
// Tolerances: float32 fused vs composite 2e-6 abs + 1e-5 rel (the fused CPU
// kernel accumulates the softmax block by block, the composite path in one
// pass: both are float32 roundings of the same sum); gradients 1e-5 abs +
// 1e-4 rel. bfloat16 results are compared with a float64 reference at 2e-2
// abs + 2e-2 rel (bf16 has 8 mantissa bits: one rounding of an O(1) output is
// up to 4e-3, inputs are rounded too).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { attend, decoderMask, repeatKv } from "../../src/nn/attention.js";
import { F, features, manualSeed, ones, randn, type Tensor, tensor, tidy } from "../../src/torch/index.js";
import { assertClose } from "../helpers/close.js";

const F32 = { atol: 2e-6, rtol: 1e-5 };
const GRAD = { atol: 1e-5, rtol: 1e-4 };
const BF16 = { atol: 2e-2, rtol: 2e-2 };
const noFused = features.fusedAttention ? false : `libtorch ${features.torchVersion} has no fused attention (2.0+)`;
const noRms = features.nativeRmsNorm ? false : `libtorch ${features.torchVersion} has no aten::rms_norm (2.4+)`;

/** A padded decoder batch's boolean mask (B, 1, T, S), as the models build it. */
function paddedMask(lengths: number[], t: number): Tensor {
  const rows = lengths.map((n) => Array.from({ length: t }, (_, j) => (j >= t - n ? 1 : 0))); // left padding
  return decoderMask(tensor(rows, { dtype: "int64" }), t, 0).mask!;
}

/** softmax(q k^T * scale + mask) v in float64, heads of k/v repeated for GQA: the reference. */
function reference(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, causal: boolean, scale?: number): Tensor {
  return tidy(() => {
    const nRep = q.size(1) / k.size(1);
    const [q64, k64, v64] = [q.double(), repeatKv(k.double(), nRep), repeatKv(v.double(), nRep)];
    let scores = q64.matmul(k64.transpose(-2, -1)).mul(scale ?? 1 / Math.sqrt(q.size(-1)));
    const [L, S] = [q.size(-2), k.size(-2)];
    if (causal) scores = scores.maskedFill(ones([L, S], { dtype: "bool" }).tril().logicalNot(), -Infinity);
    if (mask) scores = mask.dtype === "bool" ? scores.maskedFill(mask.logicalNot(), -Infinity) : scores.add(mask.double());
    return F.softmax(scores, -1).matmul(v64);
  });
}

interface Case {
  name: string;
  shape: { b: number; h: number; hkv: number; t: number; s: number; d: number };
  mask?: () => Tensor;
  causal?: boolean;
  scale?: number;
}

// Shapes of the tiny and SmolVLM-256M configs: 9 query / 3 kv heads of 64 (the
// decoder), 12 heads of 64 without GQA (the vision tower), and smaller ones.
const CASES: Case[] = [
  { name: "decoder prefill, causal (top-left), GQA 9/3, head 64", shape: { b: 2, h: 9, hkv: 3, t: 11, s: 11, d: 64 }, causal: true },
  { name: "decoder prefill, left-padded batch (bool mask from decoderMask), GQA 4/2", shape: { b: 3, h: 4, hkv: 2, t: 7, s: 7, d: 16 }, mask: () => paddedMask([7, 4, 1], 7) },
  { name: "decoding one token over a cache of 12, padded keys, GQA 9/3", shape: { b: 2, h: 9, hkv: 3, t: 1, s: 12, d: 64 }, mask: () => decoderMask(tensor([Array(12).fill(1), [0, 0, 0, ...Array(9).fill(1)]], { dtype: "int64" }), 1, 11).mask! },
  { name: "vision tower, patch mask (B, 1, 1, S), 12 heads of 64", shape: { b: 2, h: 12, hkv: 12, t: 16, s: 16, d: 64 }, mask: () => tensor([Array(16).fill(true), [...Array(10).fill(true), ...Array(6).fill(false)]], { dtype: "bool" }).view(2, 1, 1, 16) },
  { name: "additive float mask and an explicit scale", shape: { b: 1, h: 2, hkv: 2, t: 5, s: 6, d: 8 }, mask: () => randn([5, 6]), scale: 0.3 },
];

function inputs(c: Case, seed: number): [Tensor, Tensor, Tensor] {
  manualSeed(seed);
  const { b, h, hkv, t, s, d } = c.shape;
  return [randn([b, h, t, d]), randn([b, hkv, s, d]), randn([b, hkv, s, d])];
}

describe("fused attention (libtorch 2.x) against the composite path", () => {
  CASES.forEach((c, i) => {
    test(`${c.name}: float32 outputs within ${F32.atol} + ${F32.rtol} rel`, { skip: noFused }, () =>
      tidy(() => {
        const [q, k, v] = inputs(c, 100 + i);
        const nRep = c.shape.h / c.shape.hkv;
        const [kr, vr] = [repeatKv(k, nRep), repeatKv(v, nRep)];
        const opts = { attnMask: c.mask?.() ?? null, isCausal: c.causal ?? false, scale: c.scale };
        const fused = F.scaledDotProductAttention(q, kr, vr, opts);
        const composite = F.scaledDotProductAttentionComposite(q, kr, vr, opts);
        assertClose(fused, composite, F32, "fused vs composite");
        assertClose(fused, reference(q, k, v, opts.attnMask, opts.isCausal, c.scale), F32, "fused vs float64 reference");
      }));

    test(`${c.name}: float32 gradients of q, k, v within ${GRAD.atol} + ${GRAD.rtol} rel`, { skip: noFused }, () =>
      tidy(() => {
        const [q0, k0, v0] = inputs(c, 200 + i);
        const nRep = c.shape.h / c.shape.hkv;
        const mask = c.mask?.() ?? null;
        const grads = (fn: typeof F.scaledDotProductAttention) => {
          const [q, k, v] = [q0.detach().requiresGrad_(), k0.detach().requiresGrad_(), v0.detach().requiresGrad_()];
          const out = fn(q, repeatKv(k, nRep), repeatKv(v, nRep), { attnMask: mask, isCausal: c.causal ?? false, scale: c.scale });
          // A fixed random weighting, so every output element matters.
          manualSeed(300 + i);
          out.mul(randn(out.shape)).sum().backward();
          return [q.grad!, k.grad!, v.grad!];
        };
        const a = grads(F.scaledDotProductAttention);
        const b = grads(F.scaledDotProductAttentionComposite);
        ["q", "k", "v"].forEach((n, j) => assertClose(a[j], b[j], GRAD, `grad ${n}`));
      }));
  });

  test("attend() (the models' entry: GQA without copying the cache when decoding) equals the float64 reference, float32 and bfloat16", () =>
    tidy(() => {
      CASES.filter((c) => c.scale === undefined).forEach((c, i) => {
        const [q, k, v] = inputs(c, 400 + i);
        const mask = c.mask?.() ?? null;
        const ref = reference(q, k, v, mask, c.causal ?? false);
        assertClose(attend(q, k, v, { mask, isCausal: c.causal }), ref, F32, `${c.name} float32`);
        const out = attend(q.bfloat16(), k.bfloat16(), v.bfloat16(), { mask, isCausal: c.causal });
        assert.equal(out.dtype, "bfloat16");
        assertClose(out.float(), ref, BF16, `${c.name} bfloat16`);
      });
    }));

  test("a padded query row (every key masked but itself) stays finite on both paths", () =>
    tidy(() => {
      const c = CASES[1];
      const [q, k, v] = inputs(c, 500);
      const mask = c.mask!();
      const outs = [F.scaledDotProductAttentionComposite(q, repeatKv(k, 2), repeatKv(v, 2), { attnMask: mask })];
      if (features.fusedAttention) outs.push(F.scaledDotProductAttention(q, repeatKv(k, 2), repeatKv(v, 2), { attnMask: mask }));
      for (const o of outs) assert.equal(o.isfinite().all().item(), true);
    }));
});

describe("aten::rms_norm (libtorch >= 2.4) against the composite path", () => {
  const shapes = [
    [2, 5, 64],
    [3, 576],
    [1, 1, 7],
  ];
  test("float32 and float64, with and without weight, eps 1e-6 and 1e-5: within 1e-6 abs + 1e-6 rel (float64: 1e-12)", { skip: noRms }, () =>
    tidy(() => {
      manualSeed(7);
      for (const shape of shapes) {
        for (const dtype of ["float32", "float64"] as const) {
          const x = randn(shape, { dtype }).mul(3);
          const w = randn([shape[shape.length - 1]], { dtype });
          const tol = dtype === "float32" ? { atol: 1e-6, rtol: 1e-6 } : { atol: 1e-12, rtol: 1e-12 };
          for (const eps of [1e-6, 1e-5]) {
            assertClose(F.rmsNorm(x, w, eps), F.rmsNormComposite(x, w, eps), tol, `[${shape}] ${dtype} eps ${eps} weighted`);
            assertClose(F.rmsNorm(x, null, eps), F.rmsNormComposite(x, null, eps), tol, `[${shape}] ${dtype} eps ${eps}`);
          }
        }
      }
    }));

  test("float32 gradients of x and weight within 1e-5 abs + 1e-4 rel", { skip: noRms }, () =>
    tidy(() => {
      manualSeed(8);
      const x0 = randn([2, 5, 64]);
      const w0 = randn([64]);
      const g = randn([2, 5, 64]);
      const grads = (fn: typeof F.rmsNorm) => {
        const [x, w] = [x0.detach().requiresGrad_(), w0.detach().requiresGrad_()];
        fn(x, w, 1e-6).mul(g).sum().backward();
        return [x.grad!, w.grad!];
      };
      const a = grads(F.rmsNorm);
      const b = grads(F.rmsNormComposite);
      assertClose(a[0], b[0], GRAD, "grad x");
      assertClose(a[1], b[1], GRAD, "grad weight");
    }));

  test("bfloat16 input: both paths within bf16 rounding (2e-2) of the float64 value", () =>
    tidy(() => {
      manualSeed(9);
      const x = randn([4, 64]).mul(2);
      const w = randn([64]);
      const ref = F.rmsNormComposite(x.double(), w.double(), 1e-6);
      assertClose(F.rmsNorm(x.bfloat16(), w.bfloat16(), 1e-6).float(), ref, BF16, "rmsNorm bf16");
      assertClose(F.rmsNormComposite(x.bfloat16(), w.bfloat16(), 1e-6).float(), ref, BF16, "composite bf16");
    }));
});
