// Rotary position embeddings as in HF's LlamaRotaryEmbedding / modeling_rope_utils:
// inv_freq[i] = 1 / theta^(2i / dim), optionally rescaled (linear, llama3, yarn);
// angles = position * inv_freq in float32; cos/sin = cos/sin(cat(angles, angles))
// times the attention scaling (1 except yarn), cast to the activations' dtype.
// Applied with rotate_half (the two halves of the head dim, not interleaved pairs).
import { arange, cat, type Device, type DType, full, keep, type Tensor, tensor, tidy } from "../torch/index.js";
import type { RopeScaling } from "./configs.js";

export interface RopeParams {
  /** Rotary dimension (the head dim). */
  dim: number;
  theta: number;
  scaling: RopeScaling | null;
  /** The model's max_position_embeddings (yarn's original context when the scaling names none). */
  maxPositionEmbeddings: number;
}

/** inv_freq (dim/2 values, float32 rounding) and the cos/sin multiplier. */
export function ropeInvFreq(p: RopeParams): { invFreq: Float32Array; attentionScaling: number } {
  // Default frequencies computed with the same float32 tensor ops as transformers:
  // 1 / (theta ** (arange(0, dim, 2).float() / dim)).
  const base = tidy(() => {
    const exps = arange(0, p.dim, 2).float().div(p.dim);
    return full([exps.size(0)], p.theta).pow(exps).reciprocal().toTypedArray() as Float32Array;
  });
  const s = p.scaling;
  if (!s || s.ropeType === "default") return { invFreq: base, attentionScaling: 1 };
  const f = Math.fround;
  switch (s.ropeType) {
    case "linear":
      return { invFreq: base.map((x) => f(x / s.factor)), attentionScaling: 1 };
    case "llama3": {
      const old = s.originalMaxPositionEmbeddings!;
      const lowWavelen = old / s.lowFreqFactor!;
      const highWavelen = old / s.highFreqFactor!;
      const out = base.map((x) => {
        const wavelen = (2 * Math.PI) / x;
        if (wavelen < highWavelen) return x;
        if (wavelen > lowWavelen) return f(x / s.factor);
        const smooth = (old / wavelen - s.lowFreqFactor!) / (s.highFreqFactor! - s.lowFreqFactor!);
        return f((1 - smooth) * (x / s.factor) + smooth * x);
      });
      return { invFreq: out, attentionScaling: 1 };
    }
    case "yarn": {
      const dim = p.dim;
      const maxPos = s.originalMaxPositionEmbeddings ?? p.maxPositionEmbeddings;
      const attentionScaling = s.attentionFactor ?? 0.1 * Math.log(s.factor) + 1;
      const betaFast = s.betaFast ?? 32;
      const betaSlow = s.betaSlow ?? 1;
      const corrDim = (rot: number) => (dim * Math.log(maxPos / (rot * 2 * Math.PI))) / (2 * Math.log(p.theta));
      const low = Math.max(Math.floor(corrDim(betaFast)), 0);
      let high = Math.min(Math.ceil(corrDim(betaSlow)), dim - 1);
      if (low === high) high += 0.001;
      const out = base.map((x, i) => {
        const ramp = Math.min(Math.max((i - low) / (high - low), 0), 1);
        const extrapolationFactor = 1 - ramp;
        return f((x / s.factor) * (1 - extrapolationFactor) + x * extrapolationFactor);
      });
      return { invFreq: out, attentionScaling };
    }
  }
}

/** Precomputed inv_freq per device; cos/sin for given positions. */
export class RotaryEmbedding {
  readonly dim: number;
  readonly attentionScaling: number;
  private readonly invFreqValues: Float32Array;
  private readonly perDevice = new Map<string, Tensor>();

  constructor(p: RopeParams) {
    this.dim = p.dim;
    const { invFreq, attentionScaling } = ropeInvFreq(p);
    this.invFreqValues = invFreq;
    this.attentionScaling = attentionScaling;
  }

  private invFreq(device: Device): Tensor {
    let t = this.perDevice.get(device);
    if (!t) {
      t = keep(tensor(this.invFreqValues, { device }));
      this.perDevice.set(device, t);
    }
    return t;
  }

  /** positions (B, T) int64 -> cos, sin (B, 1, T, dim) in `dtype`, ready to broadcast over heads. */
  cosSin(positionIds: Tensor, dtype: DType): { cos: Tensor; sin: Tensor } {
    return tidy(() => {
      const freqs = positionIds.float().unsqueeze(-1).mul(this.invFreq(positionIds.device)); // (B, T, dim/2)
      const emb = cat([freqs, freqs], -1).unsqueeze(1); // (B, 1, T, dim)
      let cos = emb.cos();
      let sin = emb.sin();
      if (this.attentionScaling !== 1) {
        cos = cos.mul(this.attentionScaling);
        sin = sin.mul(this.attentionScaling);
      }
      return dtype === "float32" ? { cos, sin } : { cos: cos.to(dtype), sin: sin.to(dtype) };
    });
  }

  dispose(): void {
    for (const t of this.perDevice.values()) t.dispose();
    this.perDevice.clear();
  }
}

/** (-x2, x1) for x = (x1, x2) split in halves along the last dim. */
export function rotateHalf(x: Tensor): Tensor {
  return tidy(() => {
    const half = x.size(-1) / 2;
    const x1 = x.narrow(-1, 0, half);
    const x2 = x.narrow(-1, half, half);
    return cat([x2.neg(), x1], -1);
  });
}

/** x * cos + rotate_half(x) * sin, for x (B, H, T, dim) and cos/sin (B, 1, T, dim). */
export function applyRotary(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  return tidy(() => x.mul(cos).add(rotateHalf(x).mul(sin)));
}
