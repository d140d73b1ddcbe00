// Gradient clipping by total norm, as torch.nn.utils.clip_grad_norm_: the
// norm of all gradients taken together as one vector; every gradient is
// scaled in place by min(1, maxNorm / (total + 1e-6)). All in tensor ops.
import { noGrad } from "../autograd.js";
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
  const temps: Tensor[] = [];
  try {
    return noGrad(() => {
      let total: Tensor;
      if (normType === Infinity) {
        const maxes = grads.map((g) => g.abs().max());
        temps.push(...maxes);
        total = maxes.length === 1 ? maxes[0] : stack(maxes).max();
      } else {
        const norms = foreachNorm(grads, normType);
        temps.push(...norms);
        total = stack(norms).norm(normType);
      }
      temps.push(total);
      const totalValue = total.itemNumber();
      if (opts.errorIfNonfinite && !Number.isFinite(totalValue)) {
        throw new Error(`clipGradNorm: the total norm of order ${normType} of the gradients is ${totalValue}, so it cannot be clipped`);
      }
      // PyTorch computes the coefficient as tensor ops (float / tensor is
      // reciprocal(tensor) * float) and always multiplies; multiplying by a
      // coefficient clamped to exactly 1 changes nothing, so that is skipped.
      const coef = total.add(1e-6).reciprocal().mul(maxNorm).clamp(null, 1.0);
      temps.push(coef);
      if (coef.itemNumber() !== 1) foreachMulList_(grads, grads.map(() => coef));
      return totalValue;
    });
  } finally {
    for (const t of [...temps, ...grads]) t.dispose();
  }
}
