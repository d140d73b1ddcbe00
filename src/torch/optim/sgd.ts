// Stochastic gradient descent with torch.optim.SGD's exact update:
//   d = g + weightDecay * p
//   momentum: buf = d on the first step, else buf = momentum * buf + (1 - dampening) * d
//             d = nesterov ? d + momentum * buf : buf
//   p -= lr * d
import { type Tensor } from "../tensor.js";
import { checkNumber, chunkByElements, definedOnly, FOREACH_CHUNK_ELEMENTS, foreachAddList, foreachAddList_, foreachMul_, type GradItem, Optimizer, type ParamGroup, type ParamGroupInput } from "./optimizer.js";

export interface SGDOptions {
  /** Learning rate (required, as in PyTorch). */
  lr: number;
  /** Momentum factor. Default 0 (plain SGD). */
  momentum: number;
  /** Dampening of the gradient added to the momentum buffer. Default 0. */
  dampening: number;
  /** L2 penalty added to the gradient (coupled, unlike AdamW's). Default 0. */
  weightDecay: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). Default false. */
  nesterov: boolean;
}

export const SGD_DEFAULTS: Readonly<Omit<SGDOptions, "lr">> = Object.freeze({ momentum: 0, dampening: 0, weightDecay: 0, nesterov: false });

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: readonly Tensor[] | readonly ParamGroupInput<SGDOptions>[], options: Partial<SGDOptions> & { lr: number }) {
    if (typeof options !== "object" || options === null || options.lr === undefined) throw new Error("SGD: options.lr is required");
    super("SGD", params, { ...SGD_DEFAULTS, ...definedOnly(options), lr: options.lr });
  }

  protected validateOptions(o: SGDOptions, where: string): void {
    checkNumber(o.lr, "lr", where, 0);
    checkNumber(o.momentum, "momentum", where, 0);
    checkNumber(o.dampening, "dampening", where, -Infinity);
    checkNumber(o.weightDecay, "weightDecay", where, 0);
    if (typeof o.nesterov !== "boolean") throw new Error(`${where}: nesterov must be a boolean, got ${JSON.stringify(o.nesterov)}`);
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) throw new Error(`${where}: nesterov momentum requires momentum > 0 and dampening 0`);
  }

  protected bufferNames(group: ParamGroup<SGDOptions>): readonly string[] {
    return group.momentum !== 0 ? ["momentum_buffer"] : [];
  }

  protected updateGroup(group: ParamGroup<SGDOptions>, items: GradItem[]): void {
    for (const chunk of chunkByElements(items, FOREACH_CHUNK_ELEMENTS)) this.updateChunk(group, chunk);
  }

  private updateChunk(group: ParamGroup<SGDOptions>, items: GradItem[]): void {
    const { lr, momentum, dampening, weightDecay, nesterov } = group;
    const params = items.map((it) => it.param);
    const temps: Tensor[] = [];
    try {
      let d = items.map((it) => it.grad);
      if (weightDecay !== 0) {
        d = foreachAddList(d, params, weightDecay);
        temps.push(...d);
      }
      if (momentum !== 0) {
        // A parameter's first step starts its buffer at d (no dampening), as PyTorch does.
        const old: number[] = [];
        const bufs = items.map((it, i) => {
          let st = this.state[it.index];
          if (!st?.buffers.momentum_buffer) {
            st = { step: st?.step ?? 0, buffers: { momentum_buffer: this.newBuffer(it.param).copy_(d[i]) } };
            this.state[it.index] = st;
          } else {
            old.push(i);
          }
          st.step += 1;
          return st.buffers.momentum_buffer;
        });
        if (old.length > 0) {
          const oldBufs = old.map((i) => bufs[i]);
          foreachMul_(oldBufs, momentum);
          foreachAddList_(oldBufs, old.map((i) => d[i]), 1 - dampening);
        }
        if (nesterov) {
          d = foreachAddList(d, bufs, momentum);
          temps.push(...d);
        } else {
          d = bufs;
        }
      } else {
        for (const it of items) {
          const st = (this.state[it.index] ??= { step: 0, buffers: {} });
          st.step += 1;
        }
      }
      foreachAddList_(params, d, -lr);
    } finally {
      for (const t of temps) t.dispose();
    }
  }
}
