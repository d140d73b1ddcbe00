// SigLIP vision transformer as used by Idefics3 (HF Idefics3VisionTransformer,
// itself SigLIP with NaViT-style position ids for images smaller than
// image_size): patch conv -> + position embedding -> pre-norm encoder layers
// (bidirectional attention, gelu_pytorch_tanh MLP) -> post_layernorm.
// Module paths: embeddings.patch_embedding.{weight,bias}, embeddings.position_embedding.weight,
// encoder.layers.N.self_attn.{q,k,v,out}_proj.{weight,bias}, encoder.layers.N.layer_norm{1,2}.{weight,bias},
// encoder.layers.N.mlp.fc{1,2}.{weight,bias}, post_layernorm.{weight,bias}.
import { activation, type Activation, attend, Conv2d, Embedding, LayerNorm, Linear, Module, ModuleList } from "../nn/index.js";
import { arange, type Tensor, tensor, tidy } from "../torch/index.js";
import type { VisionConfig } from "./configs.js";
import type { ModelPlacement } from "./llama.js";

/**
 * Position ids of the patches of one image of nbH x nbW real patches on a
 * side x side position grid, as Idefics3VisionEmbeddings computes them:
 * fractional coordinates 0, 1/nb, ... bucketized (right=True) against the
 * boundaries 1/side, 2/side, ... in float32. For a full image (nb = side)
 * this is 0 .. side*side-1.
 */
export function bucketPositionIds(nbH: number, nbW: number, side: number): number[] {
  const f = Math.fround;
  // torch.arange(1/side, 1.0, 1/side): float32 values start + i*step, computed in double.
  const step = 1 / side;
  const nB = Math.ceil((1 - step) / step);
  const boundaries = Array.from({ length: nB }, (_, i) => f(step + i * step));
  const coords = (nb: number): number[] => {
    // torch.arange(0, 1 - 1e-6, 1 / nb) where 1 / nb is a float32 tensor.
    const s = f(1 / nb);
    const n = Math.ceil((1 - 1e-6) / s);
    return Array.from({ length: n }, (_, i) => {
      const x = f(i * s);
      let k = 0;
      while (k < boundaries.length && boundaries[k] <= x) k++;
      return k;
    });
  };
  const h = coords(nbH);
  const w = coords(nbW);
  const out: number[] = [];
  for (const r of h) for (const c of w) out.push(r * side + c);
  return out;
}

export class SiglipVisionEmbeddings extends Module {
  patch_embedding: Conv2d;
  position_embedding: Embedding;
  readonly patchSize: number;
  /** Patches per side of a full image: floor(image_size / patch_size), as transformers (a partial patch is dropped by the stride-p conv). */
  readonly side: number;

  constructor(c: VisionConfig, o: ModelPlacement = {}) {
    super();
    this.patchSize = c.patchSize;
    this.side = Math.floor(c.imageSize / c.patchSize);
    this.patch_embedding = this.addModule("patch_embedding", new Conv2d(c.numChannels, c.hiddenSize, c.patchSize, { stride: c.patchSize, ...o }));
    this.position_embedding = this.addModule("position_embedding", new Embedding(this.side * this.side, c.hiddenSize, o));
  }

  /**
   * pixels (N, C, H, W), optional patch mask (N, H/p, W/p) bool -> (N, (H/p)(W/p), D).
   * Without a mask every patch is real.
   */
  forward(pixelValues: Tensor, patchMask?: Tensor | null): Tensor {
    return tidy(() => {
      const patches = this.patch_embedding.forward(pixelValues); // (N, D, h, w)
      const [n, , h, w] = patches.shape;
      const x = patches.flatten(2).transpose(1, 2); // (N, h*w, D)
      return x.add(this.position_embedding.forward(this.positionIds(n, h, w, patchMask ?? null, pixelValues)));
    });
  }

  private positionIds(n: number, h: number, w: number, patchMask: Tensor | null, like: Tensor): Tensor {
    if (!patchMask && h === this.side && w === this.side) return arange(0, h * w, 1, { device: like.device }).view(1, h * w);
    if (!patchMask) return tensor(bucketPositionIds(h, w, this.side), { dtype: "int64", device: like.device }).view(1, h * w);
    // Per image: the real patches form a top-left nbH x nbW block; padding patches get id 0.
    const flat = patchMask.toFlatArray();
    const ids = new Array<number>(n * h * w).fill(0);
    for (let i = 0; i < n; i++) {
      const m = flat.slice(i * h * w, (i + 1) * h * w);
      let nbH = 0;
      let nbW = 0;
      for (let r = 0; r < h; r++) nbH += m[r * w] ? 1 : 0;
      for (let c = 0; c < w; c++) nbW += m[c] ? 1 : 0;
      const pos = nbH > 0 && nbW > 0 ? bucketPositionIds(nbH, nbW, this.side) : [];
      let k = 0;
      for (let j = 0; j < h * w; j++) if (m[j] && k < pos.length) ids[i * h * w + j] = pos[k++];
    }
    return tensor(ids, { dtype: "int64", device: like.device }).view(n, h * w);
  }
}

export class SiglipAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  out_proj: Linear;
  readonly numHeads: number;
  readonly headDim: number;
  readonly dropout: number;

  constructor(c: VisionConfig, o: ModelPlacement = {}) {
    super();
    this.numHeads = c.numAttentionHeads;
    this.headDim = c.hiddenSize / c.numAttentionHeads;
    this.dropout = c.attentionDropout;
    const lin = () => new Linear(c.hiddenSize, c.hiddenSize, o);
    this.k_proj = this.addModule("k_proj", lin());
    this.v_proj = this.addModule("v_proj", lin());
    this.q_proj = this.addModule("q_proj", lin());
    this.out_proj = this.addModule("out_proj", lin());
  }

  /** x (N, S, D), optional key mask (N, 1, 1, S) bool -> (N, S, D); scale head_dim^-0.5, no causal mask. */
  forward(x: Tensor, keyMask: Tensor | null): Tensor {
    return tidy(() => {
      const [b, s, d] = x.shape;
      const heads = (y: Tensor) => y.view(b, s, this.numHeads, this.headDim).transpose(1, 2);
      const q = heads(this.q_proj.forward(x));
      const k = heads(this.k_proj.forward(x));
      const v = heads(this.v_proj.forward(x));
      const y = attend(q, k, v, { mask: keyMask, dropoutP: this.training ? this.dropout : 0 });
      return this.out_proj.forward(y.transpose(1, 2).reshape(b, s, d));
    });
  }
}

export class SiglipMLP extends Module {
  fc1: Linear;
  fc2: Linear;
  private readonly act: Activation;

  constructor(c: VisionConfig, o: ModelPlacement = {}) {
    super();
    this.act = activation(c.hiddenAct);
    this.fc1 = this.addModule("fc1", new Linear(c.hiddenSize, c.intermediateSize, o));
    this.fc2 = this.addModule("fc2", new Linear(c.intermediateSize, c.hiddenSize, o));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => this.fc2.forward(this.act(this.fc1.forward(x))));
  }
}

export class SiglipEncoderLayer extends Module {
  self_attn: SiglipAttention;
  layer_norm1: LayerNorm;
  mlp: SiglipMLP;
  layer_norm2: LayerNorm;

  constructor(c: VisionConfig, o: ModelPlacement = {}) {
    super();
    this.self_attn = this.addModule("self_attn", new SiglipAttention(c, o));
    this.layer_norm1 = this.addModule("layer_norm1", new LayerNorm(c.hiddenSize, { eps: c.layerNormEps, ...o }));
    this.mlp = this.addModule("mlp", new SiglipMLP(c, o));
    this.layer_norm2 = this.addModule("layer_norm2", new LayerNorm(c.hiddenSize, { eps: c.layerNormEps, ...o }));
  }

  forward(x: Tensor, keyMask: Tensor | null): Tensor {
    return tidy(() => {
      const h = x.add(this.self_attn.forward(this.layer_norm1.forward(x), keyMask));
      return h.add(this.mlp.forward(this.layer_norm2.forward(h)));
    });
  }
}

export class SiglipEncoder extends Module {
  layers: ModuleList<SiglipEncoderLayer>;

  constructor(c: VisionConfig, o: ModelPlacement = {}) {
    super();
    this.layers = this.addModule("layers", new ModuleList(Array.from({ length: c.numHiddenLayers }, () => new SiglipEncoderLayer(c, o))));
  }

  forward(x: Tensor, keyMask: Tensor | null): Tensor {
    return tidy(() => {
      let h = x;
      for (const layer of this.layers) {
        const next = layer.forward(h, keyMask);
        if (h !== x) h.dispose();
        h = next;
      }
      return h;
    });
  }
}

export class SiglipVisionTransformer extends Module {
  embeddings: SiglipVisionEmbeddings;
  encoder: SiglipEncoder;
  post_layernorm: LayerNorm;
  readonly config: VisionConfig;

  constructor(c: VisionConfig, o: ModelPlacement = {}) {
    super();
    this.config = c;
    this.embeddings = this.addModule("embeddings", new SiglipVisionEmbeddings(c, o));
    this.encoder = this.addModule("encoder", new SiglipEncoder(c, o));
    this.post_layernorm = this.addModule("post_layernorm", new LayerNorm(c.hiddenSize, { eps: c.layerNormEps, ...o }));
  }

  /**
   * pixels (N, C, H, W) in the parameters' dtype, optional patch mask
   * (N, H/p, W/p) bool -> last hidden state (N, (H/p)(W/p), D) after post_layernorm.
   */
  forward(pixelValues: Tensor, patchMask?: Tensor | null): Tensor {
    if (pixelValues.ndim !== 4 || pixelValues.size(1) !== this.config.numChannels) {
      throw new Error(`SiglipVisionTransformer: pixelValues must be [N, ${this.config.numChannels}, H, W], got [${pixelValues.shape.join(", ")}]`);
    }
    return tidy(() => {
      // A mask with no padded patch is the same as none (HF drops it too).
      const mask = patchMask && Boolean(patchMask.logicalNot().any().item()) ? patchMask : null;
      const h = this.embeddings.forward(pixelValues, mask);
      const keyMask = mask ? mask.reshape(mask.size(0), 1, 1, -1) : null;
      return this.post_layernorm.forward(this.encoder.forward(h, keyMask));
    });
  }
}
