// Gradient clipping by total norm, as torch.nn.utils.clip_grad_norm_: the
// norm of all gradients taken together as one vector; every gradient is
// scaled in place by min(1, maxNorm / (total + 1e-6)). All in tensor ops.
import { noGrad } from "../autograd.js";
import { tidy } from "../scope.js";
import { stack } from "../ops/shape.js";
import { Tensor } from "../tensor.js";
import { foreachMulList_, foreachNorm } from "./optimizer.js";

export interface ClipGradNormOptions {
  /** Throw when the total norm is NaN or infinite (instead of scaling by it). Default false. */
  errorIfNonfinite?: boolean;
}

/**
 * Scales the gradients of `params` in place so that their total `normType`-norm
 * (2 by default; Infinity for the max-abs norm) is at most `maxNorm`. Parameters
 * without a gradient are skipped. Returns the total norm before clipping
 * (0 when no parameter has a gradient).
 */
export function clipGradNorm(params: readonly Tensor[] | Tensor, maxNorm: number, normType = 2, opts: ClipGradNormOptions = {}): number {
  if (typeof maxNorm !== "number" || Number.isNaN(maxNorm)) throw new Error(`clipGradNorm: maxNorm must be a number, got ${JSON.stringify(maxNorm)}`);
  if (typeof normType !== "number" || Number.isNaN(normType) || normType < 0) throw new Error(`clipGradNorm: normType must be a number >= 0 (or Infinity), got ${normType}`);
  const list = params instanceof Tensor ? [params] : params;
  const grads: Tensor[] = [];
  for (const p of list) {
    const g = p.grad;
    if (g !== null) grads.push(g);
  }
  if (grads.length === 0) return 0;
  try {
    // tidy: every intermediate (the stacked norms, the coefficient's chain) is
    // freed here, also when the caller has no scope open (the trainers call
    // this outside one); before, four handles per call were left to the GC.
    return noGrad(() =>
      tidy(() => {
        let total: Tensor;
        if (normType === Infinity) {
          const maxes = grads.map((g) => g.abs().max());
          total = maxes.length === 1 ? maxes[0] : stack(maxes).max();
        } else {
          total = stack(foreachNorm(grads, normType)).norm(normType);
        }
        const totalValue = total.itemNumber();
        if (opts.errorIfNonfinite && !Number.isFinite(totalValue)) {
          throw new Error(`clipGradNorm: the total norm of order ${normType} of the gradients is ${totalValue}, so it cannot be clipped`);
        }
        // PyTorch computes the coefficient as tensor ops (float / tensor is
        // reciprocal(tensor) * float) and always multiplies; multiplying by a
        // coefficient clamped to exactly 1 changes nothing, so that is skipped.
        const coef = total.add(1e-6).reciprocal().mul(maxNorm).clamp(null, 1.0);
        if (coef.itemNumber() !== 1) foreachMulList_(grads, grads.map(() => coef));
        return totalValue;
      }),
    );
  } finally {
    for (const g of grads) g.dispose();
  }
}
