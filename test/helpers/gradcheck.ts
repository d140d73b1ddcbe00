// Finite-difference gradient check in float64.
//
// For a function f of several tensors, compares autograd's vector-Jacobian
// product  w^T J  (w: a fixed random cotangent per output) with central
// differences  (w.f(x + eps e_i) - w.f(x - eps e_i)) / (2 eps)  for every
// element i of every checked input. A random w makes any wrong Jacobian entry
// show up (with probability 1) while costing one backward pass instead of one
// per output element.
//
// Tolerances: eps = 1e-6 in float64 leaves a truncation error of O(eps^2)
// (~1e-12 times the third derivative) and a rounding error of about
// 1e-16 / eps = 1e-10, so |analytic - numeric| <= atol + rtol * |numeric| with
// atol = rtol = 1e-5 only fails for a real error. Choose inputs away from
// kinks (relu at 0, ties in max/sort), where no derivative exists.
import { noGrad, type Tensor, tensor, tidy } from "../../src/torch/index.js";

export interface GradcheckOptions {
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** Relative tolerance (default 1e-5). */
  rtol?: number;
  /** Indices of the inputs to check; default every floating input. */
  wrt?: readonly number[];
  /** Seed of the cotangent weights (default 1). */
  seed?: number;
}

/** A small deterministic PRNG (mulberry32), so weights never touch libtorch's RNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Fn = (...xs: Tensor[]) => Tensor | Tensor[];

const asList = (r: Tensor | Tensor[]): Tensor[] => (Array.isArray(r) ? r : [r]);

/** sum_k <w_k, out_k> as a JS number (float64 accumulation). */
function weightedSum(outs: Tensor[], weights: Float64Array[]): number {
  let s = 0;
  outs.forEach((o, k) => {
    const v = o.toFlatArray();
    const w = weights[k];
    for (let i = 0; i < v.length; i++) s += v[i] * w[i];
  });
  return s;
}

/**
 * Checks autograd's gradients of `fn` at `inputs` against central finite
 * differences. Inputs to check must be float64; other inputs (int indices,
 * bool masks) are passed through unchanged. Throws an AssertionError-style
 * Error naming the input, the element and both values on the first mismatch.
 * Returns the largest absolute difference seen (for reporting).
 */
export function gradcheck(fn: Fn, inputs: readonly Tensor[], opts: GradcheckOptions = {}): number {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-5;
  const wrt = opts.wrt ?? inputs.map((t, i) => (t.isFloatingPoint ? i : -1)).filter((i) => i >= 0);
  for (const i of wrt) {
    if (inputs[i].dtype !== "float64") throw new Error(`gradcheck: input ${i} must be float64 for a finite-difference check, got ${inputs[i].dtype}`);
  }
  if (wrt.length === 0) throw new Error("gradcheck: no floating input to check");

  return tidy(() => {
    // Analytic: leaves that require grad, one backward of <w, f(x)>.
    const leaves = inputs.map((t, i) => (wrt.includes(i) ? t.detach().clone().requiresGrad_(true) : t));
    const outs = asList(fn(...leaves));
    const draw = rng(opts.seed ?? 1);
    const weights = outs.map((o) => Float64Array.from({ length: o.numel }, () => draw() * 2 - 1));
    let total: Tensor | null = null;
    for (let k = 0; k < outs.length; k++) {
      const o = outs[k];
      if (!o.requiresGrad) continue; // an output independent of every checked input
      const term = o.mul(tensor(weights[k], { dtype: o.dtype, shape: o.shape })).sum();
      total = total === null ? term : total.add(term);
    }
    if (total !== null) total.backward();
    const analytic = new Map<number, number[]>();
    for (const i of wrt) {
      const g = leaves[i].grad;
      analytic.set(i, g === null ? new Array(inputs[i].numel).fill(0) : g.toFlatArray());
    }

    // Numeric: perturb one element at a time, under noGrad.
    let worst = 0;
    for (const i of wrt) {
      const base = Float64Array.from(inputs[i].toFlatArray());
      const shape = inputs[i].shape;
      const evalAt = (data: Float64Array): number =>
        tidy(() =>
          noGrad(() => {
            const args = inputs.map((t, j) => (j === i ? tensor(data, { shape }) : t));
            return weightedSum(asList(fn(...args)), weights);
          }),
        );
      const a = analytic.get(i)!;
      for (let e = 0; e < base.length; e++) {
        const x = base.slice();
        x[e] = base[e] + eps;
        const plus = evalAt(x);
        x[e] = base[e] - eps;
        const minus = evalAt(x);
        const numeric = (plus - minus) / (2 * eps);
        const diff = Math.abs(a[e] - numeric);
        worst = Math.max(worst, diff);
        if (!(diff <= atol + rtol * Math.abs(numeric))) {
          throw new Error(
            `gradcheck: input ${i} (shape [${shape.join(", ")}]) element ${e}: autograd ${a[e]} vs finite difference ${numeric} (|diff| ${diff.toExponential(2)} > atol ${atol} + rtol ${rtol} * |numeric|)`,
          );
        }
      }
    }
    return worst;
  });
}
