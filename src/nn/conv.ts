// Conv2d over (B, C, H, W), weight (out, in, k, k), as torch.nn.Conv2d.
import { type Device, type DType, empty, F, type Tensor } from "../torch/index.js";
import { Module } from "./module.js";

export interface Conv2dOptions {
  /** Stride (default 1). */
  stride?: number;
  /** Zero padding on each side (default 0, PyTorch's "valid"). */
  padding?: number;
  /** Add a bias (default true). */
  bias?: boolean;
  dtype?: DType;
  device?: Device;
}

export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number;
  readonly stride: number;
  readonly padding: number;

  constructor(inChannels: number, outChannels: number, kernelSize: number, opts: Conv2dOptions = {}) {
    super();
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = kernelSize;
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    const o = { dtype: opts.dtype ?? "float32", device: opts.device ?? "cpu" } as const;
    this.addParameter("weight", empty([outChannels, inChannels, kernelSize, kernelSize], o));
    if (opts.bias ?? true) this.addParameter("bias", empty([outChannels], o));
  }

  get weight(): Tensor {
    return this.param("weight");
  }
  get bias(): Tensor | null {
    return this.paramOrNull("bias");
  }

  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}
