// Rotary embeddings of Qwen2-VL / Qwen2.5-VL.
//
// Text (multimodal RoPE, "M-RoPE"): position ids have three rows (temporal,
// height, width) [3, B, T]. The head dim's D/2 frequency pairs are split into
// mrope_section = [s_t, s_h, s_w] consecutive groups; group g rotates by row
// g's position: angle[b, t, j] = pos[row(j), b, t] * inv_freq[j], with the
// default inv_freq[j] = 1 / theta^(2j / D) in float32. cos/sin are then
// cat(angles, angles) as in Llama (rotate_half layout), in float32 before the
// cast to the activations' dtype. Text tokens have equal rows, which makes
// this the 1-D RoPE of Qwen2 for them. (transformers computes the three rows
// in full and keeps section g of row g; picking the row per frequency first is
// the same numbers.)
//
// Vision (2-D "axial" RoPE): each patch has a (row, column) position; with
// head dim d, inv_freq has d/4 values 1 / theta^(2i / (d/2)); the angles are
// cat(row * inv_freq, col * inv_freq) (d/2) and cos/sin are cat(angles,
// angles) (d). They are applied in float32 and the result cast back, as
// transformers' apply_rotary_pos_emb_vision does.
import { arange, cat, type Device, type DType, full, keep, type Tensor, tensor, tidy } from "../../torch/index.js";
import { rotateHalf } from "../rope.js";

/** 1 / theta^(arange(0, dim, 2) / dim) with transformers' float32 tensor ops (dim/2 values). */
export function defaultInvFreq(dim: number, theta: number): Float32Array {
  return tidy(() => {
    const exps = arange(0, dim, 2).float().div(dim);
    return full([exps.size(0)], theta).pow(exps).reciprocal().toTypedArray() as Float32Array;
  });
}

/** Per-device cache of a small constant tensor. */
class DeviceConstant {
  private readonly perDevice = new Map<string, Tensor>();
  constructor(private readonly make: (device: Device) => Tensor) {}
  get(device: Device): Tensor {
    let t = this.perDevice.get(device);
    if (!t) {
      t = keep(this.make(device));
      this.perDevice.set(device, t);
    }
    return t;
  }
  dispose(): void {
    for (const t of this.perDevice.values()) t.dispose();
    this.perDevice.clear();
  }
}

export interface MRopeParams {
  /** Rotary dimension (the head dim). */
  dim: number;
  theta: number;
  /** [temporal, height, width] frequency pairs; sums to dim / 2. */
  mropeSection: readonly [number, number, number];
}

/**
 * The decoder's multimodal rotary embedding. `cosSin` has the shape of
 * LlamaModel's rotary (cos, sin as (B, 1, T, D)), so the Llama decoder layers
 * are reused unchanged; position ids are [3, B, T] instead of [B, T].
 */
export class MultimodalRotaryEmbedding {
  readonly dim: number;
  readonly mropeSection: readonly [number, number, number];
  private readonly invFreq: DeviceConstant;
  /** For each frequency pair, which position row drives it (0 temporal, 1 height, 2 width). */
  private readonly rowOfPair: DeviceConstant;

  constructor(p: MRopeParams) {
    const [a, b, c] = p.mropeSection;
    if (a + b + c !== p.dim / 2) throw new Error(`M-RoPE: mrope_section [${a}, ${b}, ${c}] must sum to head_dim / 2 = ${p.dim / 2}`);
    this.dim = p.dim;
    this.mropeSection = p.mropeSection;
    const inv = defaultInvFreq(p.dim, p.theta);
    const rows = [...new Array(a).fill(0), ...new Array(b).fill(1), ...new Array(c).fill(2)];
    this.invFreq = new DeviceConstant((device) => tensor(inv, { device }));
    this.rowOfPair = new DeviceConstant((device) => tensor(rows, { dtype: "int64", device }));
  }

  /** positions [3, B, T] int64 -> cos, sin (B, 1, T, dim) in `dtype`. */
  cosSin(positionIds: Tensor, dtype: DType): { cos: Tensor; sin: Tensor } {
    if (positionIds.ndim !== 3 || positionIds.size(0) !== 3) {
      throw new Error(`M-RoPE: position ids must be [3, batch, seq] (temporal, height, width rows), got [${positionIds.shape.join(", ")}]`);
    }
    return tidy(() => {
      const dev = positionIds.device;
      const perPair = positionIds.permute(1, 2, 0).indexSelect(2, this.rowOfPair.get(dev)); // (B, T, D/2): the row each pair follows
      const freqs = perPair.float().mul(this.invFreq.get(dev)); // (B, T, D/2)
      const emb = cat([freqs, freqs], -1).unsqueeze(1); // (B, 1, T, D)
      const cos = emb.cos();
      const sin = emb.sin();
      return dtype === "float32" ? { cos, sin } : { cos: cos.to(dtype), sin: sin.to(dtype) };
    });
  }

  dispose(): void {
    this.invFreq.dispose();
    this.rowOfPair.dispose();
  }
}

/** The vision tower's 2-D rotary embedding. */
export class VisionRotaryEmbedding {
  readonly headDim: number;
  private readonly invFreq: DeviceConstant;

  constructor(headDim: number, theta: number) {
    if (headDim % 4 !== 0) throw new Error(`vision rotary: head dim ${headDim} must be a multiple of 4`);
    this.headDim = headDim;
    const inv = defaultInvFreq(headDim / 2, theta);
    this.invFreq = new DeviceConstant((device) => tensor(inv, { device }));
  }

  /** positions [N, 2] (row, column) int64 -> cos, sin [N, headDim] float32. */
  cosSin(positions: Tensor): { cos: Tensor; sin: Tensor } {
    if (positions.ndim !== 2 || positions.size(1) !== 2) throw new Error(`vision rotary: positions must be [N, 2], got [${positions.shape.join(", ")}]`);
    return tidy(() => {
      const inv = this.invFreq.get(positions.device);
      const freqs = positions.float().unsqueeze(-1).mul(inv); // (N, 2, d/4)
      const hw = freqs.flatten(1); // (N, d/2): row angles, then column angles
      const emb = cat([hw, hw], -1); // (N, d)
      return { cos: emb.cos(), sin: emb.sin() };
    });
  }

  dispose(): void {
    this.invFreq.dispose();
  }
}

/** x (N, H, d) rotated by cos/sin (N, d) in float32, returned in x's dtype. */
export function applyVisionRotary(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  return tidy(() => {
    const xf = x.dtype === "float32" ? x : x.float();
    const c = cos.unsqueeze(1);
    const s = sin.unsqueeze(1);
    const y = xf.mul(c).add(rotateHalf(xf).mul(s));
    return y.dtype === x.dtype ? y : y.to(x.dtype);
  });
}
