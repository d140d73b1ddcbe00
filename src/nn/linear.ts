// Linear: y = x W^T + b, with W of shape (out, in) as in torch.nn.Linear.
import { type Device, type DType, empty, F, type Tensor } from "../torch/index.js";
import { Module } from "./module.js";

export interface LinearOptions {
  /** Add a bias (default true, as torch.nn.Linear). */
  bias?: boolean;
  /** Parameter dtype (default float32). */
  dtype?: DType;
  /** Parameter device (default "cpu"). */
  device?: Device;
  /** Use this tensor as the weight instead of allocating one (weight tying). */
  weight?: Tensor;
}

export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;

  /**
   * Parameters are allocated uninitialized: a model fills them by loading a
   * checkpoint or by its init function (see models/init_model.ts).
   */
  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super();
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const o = { dtype: opts.dtype ?? "float32", device: opts.device ?? "cpu" } as const;
    if (opts.weight) {
      const ws = opts.weight.shape;
      if (ws.length !== 2 || ws[0] !== outFeatures || ws[1] !== inFeatures) {
        throw new Error(`Linear: a shared weight must be [${outFeatures}, ${inFeatures}], got [${ws.join(", ")}]`);
      }
    }
    this.addParameter("weight", opts.weight ?? empty([outFeatures, inFeatures], o));
    if (opts.bias ?? true) this.addParameter("bias", empty([outFeatures], o));
  }

  /** (out, in) */
  get weight(): Tensor {
    return this.param("weight");
  }
  set weight(t: Tensor) {
    this.addParameter("weight", t);
  }
  /** (out), or null without bias. */
  get bias(): Tensor | null {
    return this.paramOrNull("bias");
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}
