// LayerNorm and RMSNorm with learnable scale, matching torch.nn.LayerNorm and
// Hugging Face's LlamaRMSNorm.
import { type Device, type DType, empty, F, type Tensor, tidy } from "../torch/index.js";
import { Module } from "./module.js";

export interface NormOptions {
  /** Added to the variance (LayerNorm default 1e-5, RMSNorm default 1e-6, as their HF classes). */
  eps?: number;
  dtype?: DType;
  device?: Device;
}

export class LayerNorm extends Module {
  readonly dim: number;
  readonly eps: number;

  constructor(dim: number, opts: NormOptions = {}) {
    super();
    this.dim = dim;
    this.eps = opts.eps ?? 1e-5;
    const o = { dtype: opts.dtype ?? "float32", device: opts.device ?? "cpu" } as const;
    this.addParameter("weight", empty([dim], o));
    this.addParameter("bias", empty([dim], o));
  }

  get weight(): Tensor {
    return this.param("weight");
  }
  get bias(): Tensor {
    return this.param("bias");
  }

  forward(x: Tensor): Tensor {
    return F.layerNorm(x, [this.dim], this.weight, this.bias, this.eps);
  }
}

/**
 * weight * (x / sqrt(mean(x^2) + eps)). As HF's LlamaRMSNorm, the statistics
 * are taken in float32 and the normalized value is cast back to the input
 * dtype before the scale is applied (bit-identical to it in float32).
 */
export class RMSNorm extends Module {
  readonly dim: number;
  readonly eps: number;

  constructor(dim: number, opts: NormOptions = {}) {
    super();
    this.dim = dim;
    this.eps = opts.eps ?? 1e-6;
    this.addParameter("weight", empty([dim], { dtype: opts.dtype ?? "float32", device: opts.device ?? "cpu" }));
  }

  get weight(): Tensor {
    return this.param("weight");
  }

  forward(x: Tensor): Tensor {
    if (x.dtype === "float32" && this.weight.dtype === "float32") return F.rmsNorm(x, this.weight, this.eps);
    return tidy(() => F.rmsNorm(x.float(), null, this.eps).to(x.dtype).mul(this.weight));
  }
}
