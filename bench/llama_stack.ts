// A stack of Llama-style decoder blocks written directly on the tensor API,
// for the engine benchmark (the real model classes come with the models
// layer). The op sequence mirrors bench/engine_ref.py, which mirrors HF's
// eager LlamaDecoderLayer, so the two timings compare like with like.
import { F, keep, randn, type Tensor, tensor, tidy, cat, ones } from "../src/torch/index.js";

export interface StackShape {
  hidden: number;
  heads: number;
  kvHeads: number;
  mlp: number;
  layers: number;
  seq: number;
  batch: number;
  ropeTheta: number;
  eps: number;
}

export const SMOLLM2_135M_BLOCK: StackShape = { hidden: 576, heads: 9, kvHeads: 3, mlp: 1536, layers: 4, seq: 256, batch: 4, ropeTheta: 100000, eps: 1e-5 };

interface Block {
  inputNorm: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  o: Tensor;
  postNorm: Tensor;
  gate: Tensor;
  up: Tensor;
  down: Tensor;
}

function param(shape: number[], std: number): Tensor {
  return keep(tidy(() => randn(shape).mul(std)).requiresGrad_(true));
}

export class LlamaStack {
  readonly blocks: Block[] = [];
  readonly finalNorm: Tensor;
  private readonly cos: Tensor;
  private readonly sin: Tensor;

  constructor(readonly s: StackShape) {
    const d = s.hidden / s.heads;
    for (let i = 0; i < s.layers; i++) {
      this.blocks.push({
        inputNorm: keep(ones([s.hidden]).requiresGrad_(true)),
        q: param([s.hidden, s.hidden], 0.02),
        k: param([s.kvHeads * d, s.hidden], 0.02),
        v: param([s.kvHeads * d, s.hidden], 0.02),
        o: param([s.hidden, s.hidden], 0.02),
        postNorm: keep(ones([s.hidden]).requiresGrad_(true)),
        gate: param([s.mlp, s.hidden], 0.02),
        up: param([s.mlp, s.hidden], 0.02),
        down: param([s.hidden, s.mlp], 0.02),
      });
    }
    this.finalNorm = keep(ones([s.hidden]).requiresGrad_(true));
    // RoPE tables (T, d): angle[t, i] = t * theta^(-2i/d), duplicated halves.
    const half = d / 2;
    const ang = new Float32Array(s.seq * d);
    for (let t = 0; t < s.seq; t++) {
      for (let i = 0; i < half; i++) {
        const a = t / Math.pow(s.ropeTheta, (2 * i) / d);
        ang[t * d + i] = a;
        ang[t * d + i + half] = a;
      }
    }
    const angles = tensor(ang, { shape: [s.seq, d] });
    this.cos = keep(angles.cos());
    this.sin = keep(angles.sin());
    angles.dispose();
  }

  parameters(): Tensor[] {
    return [...this.blocks.flatMap((b) => [b.inputNorm, b.q, b.k, b.v, b.o, b.postNorm, b.gate, b.up, b.down]), this.finalNorm];
  }

  private rmsNorm(x: Tensor, w: Tensor): Tensor {
    // HF LlamaRMSNorm: statistics in float32, then weight * normalized.
    return w.mul(F.rmsNorm(x, null, this.s.eps));
  }

  private rope(x: Tensor): Tensor {
    // x: (B, H, T, d); rotate_half(x) = cat(-x2, x1)
    const d = x.size(-1);
    const [x1, x2] = x.split(d / 2, -1);
    const rotated = cat([x2.neg(), x1], -1);
    return x.mul(this.cos).add(rotated.mul(this.sin));
  }

  private block(x: Tensor, b: Block): Tensor {
    const { batch: B, seq: T, heads: H, kvHeads: KV, hidden: C } = this.s;
    const d = C / H;
    const h = this.rmsNorm(x, b.inputNorm); // (B, T, C)
    const q = this.rope(F.linear(h, b.q).view(B, T, H, d).transpose(1, 2)); // (B, H, T, d)
    let k = this.rope(F.linear(h, b.k).view(B, T, KV, d).transpose(1, 2)); // (B, KV, T, d)
    let v = F.linear(h, b.v).view(B, T, KV, d).transpose(1, 2);
    // Grouped-query attention: each kv head serves H/KV query heads (HF repeat_kv).
    k = k.unsqueeze(2).expand(B, KV, H / KV, T, d).reshape(B, H, T, d);
    v = v.unsqueeze(2).expand(B, KV, H / KV, T, d).reshape(B, H, T, d);
    const attn = F.scaledDotProductAttention(q, k, v, { isCausal: true }); // (B, H, T, d)
    const x1 = x.add(F.linear(attn.transpose(1, 2).reshape(B, T, C), b.o));
    const h2 = this.rmsNorm(x1, b.postNorm);
    const mlp = F.linear(F.silu(F.linear(h2, b.gate)).mul(F.linear(h2, b.up)), b.down);
    return x1.add(mlp);
  }

  /** Frees the parameters and RoPE tables. */
  dispose(): void {
    for (const t of [...this.parameters(), this.cos, this.sin]) t.dispose();
  }

  /** Forward through every block and a final norm; returns a scalar loss (mean of squares). */
  loss(x: Tensor): Tensor {
    return tidy(() => {
      let h = x;
      for (const b of this.blocks) h = this.block(h, b);
      return this.rmsNorm(h, this.finalNorm).pow(2).mean();
    });
  }
}
