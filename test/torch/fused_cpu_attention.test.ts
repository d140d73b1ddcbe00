// The addon's fused CPU attention (native/src/attention.cpp): forward and
// gradients against the composite path and a float64 reference, a finite-
// difference check of its own backward, per-image independence of the batch,
// when scaledDotProductAttention takes it, and its errors.
//
// Tolerances: float32 against the composite path 2e-6 abs + 1e-5 rel (both are
// float32 roundings of the same sums, taken in another order); gradients 1e-5
// abs + 1e-4 rel; float64 against the float64 composite 1e-12; the central
// finite differences (float64, step 1e-6) 1e-7 abs + 1e-6 rel.
import assert from "node:assert/strict";
import { test } from "node:test";

import { F, features, manualSeed, randn, type Tensor, tensor, tidy } from "../../src/torch/index.js";
import { FUSED_CPU_ATTENTION_MIN_SCORES } from "../../src/torch/functional.js";
import { assertClose } from "../helpers/close.js";

const F32 = { atol: 2e-6, rtol: 1e-5 };
const GRAD = { atol: 1e-5, rtol: 1e-4 };
const F64 = { atol: 1e-12, rtol: 1e-12 };

/** (B, H, L, E) queries, (B, H, S, E) keys and (B, H, S, Ev) values; keys and values outnumber queries, Ev != E. */
function qkv(seed: number, shape = { b: 2, h: 3, l: 40, s: 56, e: 8, ev: 12 }, dtype: "float32" | "float64" = "float32"): [Tensor, Tensor, Tensor] {
  manualSeed(seed);
  const { b, h, l, s, e, ev } = shape;
  const cast = (t: Tensor) => (dtype === "float64" ? t.double() : t);
  return [cast(randn([b, h, l, e])), cast(randn([b, h, s, e])), cast(randn([b, h, s, ev]))];
}

/** Gradients of sum(out * w) for a fixed random w, through `fn`. */
function grads(fn: (q: Tensor, k: Tensor, v: Tensor) => Tensor, q0: Tensor, k0: Tensor, v0: Tensor, seed: number): Tensor[] {
  const [q, k, v] = [q0.detach().requiresGrad_(), k0.detach().requiresGrad_(), v0.detach().requiresGrad_()];
  const out = fn(q, k, v);
  manualSeed(seed);
  out.mul(randn(out.shape, { dtype: out.dtype })).sum().backward();
  return [q.grad!, k.grad!, v.grad!];
}

const composite = (scale?: number) => (q: Tensor, k: Tensor, v: Tensor) => F.scaledDotProductAttentionComposite(q, k, v, { scale });
const fused = (scale?: number) => (q: Tensor, k: Tensor, v: Tensor) => F.fusedCpuAttention(q, k, v, scale);

test("float32: outputs and gradients equal the composite path's (default and explicit scale)", () =>
  tidy(() => {
    for (const scale of [undefined, 0.3]) {
      const [q, k, v] = qkv(1);
      assertClose(fused(scale)(q, k, v), composite(scale)(q, k, v), F32, `outputs, scale ${scale ?? "default"}`);
      const a = grads(fused(scale), q, k, v, 7);
      const b = grads(composite(scale), q, k, v, 7);
      ["q", "k", "v"].forEach((n, j) => assertClose(a[j], b[j], GRAD, `grad ${n}, scale ${scale ?? "default"}`));
    }
  }));

test("float64: outputs and gradients equal the composite path's to 1e-12", () =>
  tidy(() => {
    const [q, k, v] = qkv(2, undefined, "float64");
    const out = fused()(q, k, v);
    assert.equal(out.dtype, "float64");
    assertClose(out, composite()(q, k, v), F64, "outputs");
    const a = grads(fused(), q, k, v, 8);
    const b = grads(composite(), q, k, v, 8);
    ["q", "k", "v"].forEach((n, j) => assertClose(a[j], b[j], F64, `grad ${n}`));
  }));

test("its backward matches central finite differences (float64) for every element of q, k and v", () =>
  tidy(() => {
    const shape = { b: 1, h: 2, l: 3, s: 4, e: 3, ev: 2 };
    const [q, k, v] = qkv(3, shape, "float64");
    manualSeed(9);
    const w = randn([shape.b, shape.h, shape.l, shape.ev]).double();
    const loss = (qq: Tensor, kk: Tensor, vv: Tensor) => F.fusedCpuAttention(qq, kk, vv).mul(w).sum().item() as number;
    const analytic = grads(fused(), q, k, v, 9).map((g) => g.toFlatArray());
    const inputs = [q, k, v];
    const eps = 1e-6;
    inputs.forEach((x, j) => {
      const base = x.toFlatArray();
      const numeric = base.map((_, i) => {
        const at = (delta: number) => {
          const moved = base.slice();
          moved[i] += delta;
          const xs = inputs.map((y, m) => (m === j ? tensor(moved, { dtype: "float64" }).reshape(...x.shape) : y));
          return loss(xs[0], xs[1], xs[2]);
        };
        return (at(eps) - at(-eps)) / (2 * eps);
      });
      assertClose(analytic[j], numeric, { atol: 1e-7, rtol: 1e-6 }, `d loss / d ${"qkv"[j]}`);
    });
  }));

test("each image of a batch gets exactly what it gets alone (one (batch, head) slice at a time)", () =>
  tidy(() => {
    const [q, k, v] = qkv(4, { b: 3, h: 2, l: 30, s: 30, e: 8, ev: 8 });
    const all = F.fusedCpuAttention(q, k, v);
    for (let b = 0; b < 3; b++) {
      const one = F.fusedCpuAttention(q.narrow(0, b, 1), k.narrow(0, b, 1), v.narrow(0, b, 1));
      assert.deepEqual(one.toFlatArray(), all.narrow(0, b, 1).toFlatArray(), `image ${b}`);
    }
  }));

test("scaledDotProductAttention takes it on libtorch without fused attention, for long unmasked float attention only", () =>
  tidy(() => {
    const side = Math.ceil(Math.sqrt(FUSED_CPU_ATTENTION_MIN_SCORES));
    const [q, k, v] = qkv(5, { b: 1, h: 2, l: side, s: side, e: 8, ev: 8 }).map((t) => t.detach().requiresGrad_());
    const name = (t: Tensor) => t.gradFn ?? "";
    const long = F.scaledDotProductAttention(q, k, v);
    if (features.fusedAttention) assert.doesNotMatch(name(long), /FusedCpuAttention/, "libtorch's own fused kernel comes first");
    else if (!features.fusedCpuAttention) assert.doesNotMatch(name(long), /FusedCpuAttention/, "VLM_FUSED_CPU_ATTENTION=0 turns it off");
    else assert.match(name(long), /FusedCpuAttention/);
    const short = F.scaledDotProductAttention(q.narrow(2, 0, 8), k.narrow(2, 0, 8), v.narrow(2, 0, 8));
    assert.doesNotMatch(name(short), /FusedCpuAttention/, "a short attention stays composite");
    const causal = F.scaledDotProductAttention(q, k, v, { isCausal: true });
    assert.doesNotMatch(name(causal), /FusedCpuAttention/, "causal attention stays composite");
    // Keys and values broadcast over the batch: the composite path's case, with its result.
    const q2 = q.detach().expand(2, -1, -1, -1).contiguous();
    const broadcast = F.scaledDotProductAttention(q2, k.detach(), v.detach());
    assertClose(broadcast, F.scaledDotProductAttentionComposite(q2, k.detach(), v.detach()), F32, "broadcast keys");
  }));

test("bad input: an error naming the op and what was expected, not a crash", () =>
  tidy(() => {
    const [q, k, v] = qkv(6);
    assert.throws(() => F.fusedCpuAttention(q.reshape(6, 40, 8), k, v), /fusedCpuAttention: expected 4-D \(batch, heads, length, head dim\)/);
    assert.throws(() => F.fusedCpuAttention(q, k.narrow(3, 0, 4), v), /fusedCpuAttention: key must have the query's head dim/);
    assert.throws(() => F.fusedCpuAttention(q, k, v.narrow(2, 0, 5)), /fusedCpuAttention: key must have the query's head dim and value the key's length/);
    assert.throws(() => F.fusedCpuAttention(q.bfloat16(), k.bfloat16(), v.bfloat16()), /fusedCpuAttention: float32 or float64 only, got BFloat16/);
    assert.throws(() => F.fusedCpuAttention(q, k.double(), v), /fusedCpuAttention: query, key and value must share a dtype/);
  }));
