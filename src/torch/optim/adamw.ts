// AdamW (Loshchilov & Hutter, decoupled weight decay) with torch.optim.AdamW's
// exact update, per parameter with its own step count t:
//   p  *= 1 - lr * weightDecay
//   m   = beta1 * m + (1 - beta1) * g
//   v   = beta2 * v + (1 - beta2) * g^2          (amsgrad: vmax = max(vmax, v))
//   p  -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// in the same op order as PyTorch's single-tensor path, so float32 results
// match it bit for bit on the CPU (see test/torch/optim.test.ts).
import { type Tensor } from "../tensor.js";
import {
  checkNumber,
  chunkByElements,
  definedOnly,
  foreachAddcdiv_,
  foreachAddcmul_,
  foreachAddList_,
  foreachAddScalar_,
  foreachDiv_,
  foreachMaximum_,
  foreachMul_,
  FOREACH_CHUNK_ELEMENTS,
  foreachSqrt,
  type GradItem,
  Optimizer,
  type ParamGroup,
  type ParamGroupInput,
} from "./optimizer.js";

export interface AdamWOptions {
  /** Learning rate. Default 1e-3. */
  lr: number;
  /** Decay rates of the first and second moment averages. Default [0.9, 0.999]. */
  betas: [number, number];
  /** Added to the denominator for stability. Default 1e-8. */
  eps: number;
  /** Decoupled weight decay coefficient. Default 0.01. */
  weightDecay: number;
  /** Use the maximum of past second moments (AMSGrad). Default false. */
  amsgrad: boolean;
}

export const ADAMW_DEFAULTS: Readonly<AdamWOptions> = Object.freeze({ lr: 1e-3, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 0.01, amsgrad: false });


export class AdamW extends Optimizer<AdamWOptions> {
  constructor(params: readonly Tensor[] | readonly ParamGroupInput<AdamWOptions>[], options: Partial<AdamWOptions> = {}) {
    super("AdamW", params, { ...ADAMW_DEFAULTS, betas: [...ADAMW_DEFAULTS.betas] as [number, number], ...definedOnly(options) });
  }

  protected validateOptions(o: AdamWOptions, where: string): void {
    checkNumber(o.lr, "lr", where, 0);
    checkNumber(o.eps, "eps", where, 0);
    checkNumber(o.weightDecay, "weightDecay", where, 0);
    if (!Array.isArray(o.betas) || o.betas.length !== 2) throw new Error(`${where}: betas must be [beta1, beta2], got ${JSON.stringify(o.betas)}`);
    checkNumber(o.betas[0], "betas[0]", where, 0, 1, false);
    checkNumber(o.betas[1], "betas[1]", where, 0, 1, false);
    if (typeof o.amsgrad !== "boolean") throw new Error(`${where}: amsgrad must be a boolean, got ${JSON.stringify(o.amsgrad)}`);
  }

  protected bufferNames(group: ParamGroup<AdamWOptions>): readonly string[] {
    return group.amsgrad ? ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"] : ["exp_avg", "exp_avg_sq"];
  }

  protected updateGroup(group: ParamGroup<AdamWOptions>, items: GradItem[]): void {
    const { lr, eps, weightDecay, amsgrad } = group;
    const [beta1, beta2] = group.betas;
    // Bias corrections depend on each parameter's step count: update
    // parameters with equal counts together (normally all of them).
    const byStep = new Map<number, GradItem[]>();
    for (const it of items) {
      let st = this.state[it.index];
      if (!st) {
        st = { step: 0, buffers: { exp_avg: this.newBuffer(it.param), exp_avg_sq: this.newBuffer(it.param) } };
        this.state[it.index] = st;
      }
      if (amsgrad && !st.buffers.max_exp_avg_sq) st.buffers.max_exp_avg_sq = this.newBuffer(it.param);
      st.step += 1;
      const list = byStep.get(st.step);
      if (list) list.push(it);
      else byStep.set(st.step, [it]);
    }
    for (const [step, stepItems] of byStep) {
      const biasCorrection1 = 1 - beta1 ** step;
      const biasCorrection2 = 1 - beta2 ** step;
      const stepSize = lr / biasCorrection1;
      const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
      for (const chunk of chunkByElements(stepItems, FOREACH_CHUNK_ELEMENTS)) {
        const params = chunk.map((it) => it.param);
        const grads = chunk.map((it) => it.grad);
        const bufs = chunk.map((it) => this.state[it.index]!.buffers);
        const expAvg = bufs.map((b) => b.exp_avg);
        const expAvgSq = bufs.map((b) => b.exp_avg_sq);
        // Multiplying by exactly 1 changes nothing, so skip it when there is no decay.
        const decay = 1 - lr * weightDecay;
        if (decay !== 1) foreachMul_(params, decay);
        foreachMul_(expAvg, beta1);
        foreachAddList_(expAvg, grads, 1 - beta1);
        foreachMul_(expAvgSq, beta2);
        foreachAddcmul_(expAvgSq, grads, grads, 1 - beta2);
        let second = expAvgSq;
        if (amsgrad) {
          second = bufs.map((b) => b.max_exp_avg_sq);
          foreachMaximum_(second, expAvgSq);
        }
        const denom = foreachSqrt(second);
        try {
          foreachDiv_(denom, biasCorrection2Sqrt);
          foreachAddScalar_(denom, eps);
          foreachAddcdiv_(params, expAvg, denom, -stepSize);
        } finally {
          for (const d of denom) d.dispose();
        }
      }
    }
  }
}
