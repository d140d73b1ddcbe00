// The Qwen2-VL / Qwen2.5-VL vision tower (transformers' Qwen2VisionTransformerPretrainedModel
// and Qwen2_5_VisionTransformerPretrainedModel), module paths as the checkpoint's
// "visual.*" keys:
//   patch_embed.proj.weight       Conv3d (width, C, T, P, P), no bias, stride = kernel
//   blocks.N.norm1 / norm2        LayerNorm (2-VL) or RMSNorm (2.5), eps 1e-6
//   blocks.N.attn.qkv / proj      Linear with bias
//   blocks.N.mlp.fc1 / fc2        2-VL: fc2(act(fc1(x))), act quick_gelu
//   blocks.N.mlp.{gate,up,down}_proj   2.5: down(act(gate(x)) * up(x)) with biases, act silu
//   merger.ln_q                   LayerNorm (2-VL) / RMSNorm (2.5), eps 1e-6
//   merger.mlp.0 / mlp.2          Linear -> GELU (exact) -> Linear, over m^2 patches concatenated
//
// The patch embedding is a Conv3d whose stride equals its kernel over inputs
// exactly one kernel in size, i.e. one matrix product with the flattened
// (C, T, P, P) weight; pixel_values rows are already flattened in that order.
import { activation, type Activation, attend, LayerNorm, Linear, Module, ModuleList, RMSNorm } from "../../nn/index.js";
import { cat, type Device, type DType, empty, F, type Tensor, tensor, tidy } from "../../torch/index.js";
import type { ModelPlacement } from "../llama.js";
import type { QwenFamily, QwenVisionConfig } from "./config.js";
import { applyVisionRotary, VisionRotaryEmbedding } from "./rotary.js";
import { checkGrids, frameSegments, type GridThw, inversePermutation, patchCount, visionPositions, windowLayout } from "./vision_layout.js";

const placementOf = (o: ModelPlacement): { dtype: DType; device: Device } => ({ dtype: o.dtype ?? "float32", device: o.device ?? "cpu" });

/** The Conv3d of patch_embed as a parameter holder: proj.weight (width, C, T, P, P). */
export class PatchProjection extends Module {
  constructor(width: number, c: QwenVisionConfig, o: ModelPlacement = {}) {
    super();
    this.addParameter("weight", empty([width, c.inChannels, c.temporalPatchSize, c.patchSize, c.patchSize], placementOf(o)));
  }
  get weight(): Tensor {
    return this.param("weight");
  }
}

export class PatchEmbed extends Module {
  proj: PatchProjection;
  readonly patchDim: number;

  constructor(width: number, c: QwenVisionConfig, o: ModelPlacement = {}) {
    super();
    this.proj = this.addModule("proj", new PatchProjection(width, c, o));
    this.patchDim = c.inChannels * c.temporalPatchSize * c.patchSize * c.patchSize;
  }

  /** pixels (N, C*T*P*P) -> (N, width), in the weight's dtype. */
  forward(pixels: Tensor): Tensor {
    return tidy(() => {
      const w = this.proj.weight;
      const x = pixels.dtype === w.dtype ? pixels : pixels.to(w.dtype);
      return x.matmul(w.reshape(w.size(0), this.patchDim).t());
    });
  }
}

/**
 * Attention restricted to runs of rows (each image frame, or each window):
 * segments of equal length are gathered and run as one batch.
 */
export class SegmentPlan {
  /** Rows reordered so equal-length segments are adjacent (null: already in order). */
  readonly perm: Tensor | null;
  readonly inverse: Tensor | null;
  /** Consecutive blocks of the reordered rows: `count` segments of `len` rows from `start`. */
  readonly groups: { start: number; count: number; len: number }[];

  constructor(segments: readonly number[], device: Device) {
    const starts: number[] = [];
    let s = 0;
    for (const len of segments) {
      starts.push(s);
      s += len;
    }
    const byLen = new Map<number, number[]>();
    segments.forEach((len, i) => {
      const list = byLen.get(len);
      if (list) list.push(i);
      else byLen.set(len, [i]);
    });
    const order: number[] = [];
    this.groups = [];
    for (const [len, idx] of byLen) {
      this.groups.push({ start: order.length, count: idx.length, len });
      for (const i of idx) for (let r = 0; r < len; r++) order.push(starts[i] + r);
    }
    const identity = order.every((v, i) => v === i);
    this.perm = identity ? null : tensor(order, { dtype: "int64", device });
    this.inverse = identity ? null : tensor(inversePermutation(order), { dtype: "int64", device });
  }

  /** softmax(q k^T / sqrt(d)) v within each segment, for q, k, v (N, H, d) -> (N, H, d). */
  attend(q: Tensor, k: Tensor, v: Tensor): Tensor {
    return tidy(() => {
      const pick = (x: Tensor) => (this.perm ? x.indexSelect(0, this.perm) : x);
      const [qq, kk, vv] = [pick(q), pick(k), pick(v)];
      const [, h, d] = q.shape;
      const outs = this.groups.map(({ start, count, len }) => {
        const batch = (x: Tensor) => x.narrow(0, start, count * len).view(count, len, h, d).transpose(1, 2); // (count, H, len, d)
        const y = attend(batch(qq), batch(kk), batch(vv)); // (count, H, len, d)
        return y.transpose(1, 2).reshape(count * len, h, d);
      });
      const y = outs.length === 1 ? outs[0] : cat(outs, 0);
      return this.inverse ? y.indexSelect(0, this.inverse) : y;
    });
  }

  dispose(): void {
    this.perm?.dispose();
    this.inverse?.dispose();
  }
}

export class VisionAttention extends Module {
  qkv: Linear;
  proj: Linear;
  readonly numHeads: number;
  readonly headDim: number;

  constructor(c: QwenVisionConfig, o: ModelPlacement = {}) {
    super();
    this.numHeads = c.numHeads;
    this.headDim = c.width / c.numHeads;
    this.qkv = this.addModule("qkv", new Linear(c.width, 3 * c.width, { bias: true, ...o }));
    this.proj = this.addModule("proj", new Linear(c.width, c.width, { bias: true, ...o }));
  }

  /** x (N, width) -> (N, width), attending within the plan's segments. */
  forward(x: Tensor, cos: Tensor, sin: Tensor, plan: SegmentPlan): Tensor {
    return tidy(() => {
      const n = x.size(0);
      const qkv = this.qkv.forward(x).view(n, 3, this.numHeads, this.headDim); // (N, 3, H, d)
      const q = applyVisionRotary(qkv.select(1, 0), cos, sin);
      const k = applyVisionRotary(qkv.select(1, 1), cos, sin);
      const v = qkv.select(1, 2);
      const y = plan.attend(q, k, v); // (N, H, d)
      return this.proj.forward(y.reshape(n, this.numHeads * this.headDim));
    });
  }
}

/** Qwen2-VL's block MLP: fc2(act(fc1(x))). */
export class VisionMlp extends Module {
  fc1: Linear;
  fc2: Linear;
  private readonly act: Activation;

  constructor(c: QwenVisionConfig, o: ModelPlacement = {}) {
    super();
    this.fc1 = this.addModule("fc1", new Linear(c.width, c.intermediateSize, { bias: true, ...o }));
    this.fc2 = this.addModule("fc2", new Linear(c.intermediateSize, c.width, { bias: true, ...o }));
    this.act = activation(c.hiddenAct);
  }

  forward(x: Tensor): Tensor {
    return tidy(() => this.fc2.forward(this.act(this.fc1.forward(x))));
  }
}

/** Qwen2.5-VL's block MLP: down(act(gate(x)) * up(x)), all with biases. */
export class VisionGatedMlp extends Module {
  gate_proj: Linear;
  up_proj: Linear;
  down_proj: Linear;
  private readonly act: Activation;

  constructor(c: QwenVisionConfig, o: ModelPlacement = {}) {
    super();
    const lin = (i: number, out: number) => new Linear(i, out, { bias: true, ...o });
    this.gate_proj = this.addModule("gate_proj", lin(c.width, c.intermediateSize));
    this.up_proj = this.addModule("up_proj", lin(c.width, c.intermediateSize));
    this.down_proj = this.addModule("down_proj", lin(c.intermediateSize, c.width));
    this.act = activation(c.hiddenAct);
  }

  forward(x: Tensor): Tensor {
    return tidy(() => this.down_proj.forward(this.act(this.gate_proj.forward(x)).mul(this.up_proj.forward(x))));
  }
}

type VisionNorm = LayerNorm | RMSNorm;
const visionNorm = (family: QwenFamily, dim: number, o: ModelPlacement): VisionNorm =>
  family === "qwen2_vl" ? new LayerNorm(dim, { eps: 1e-6, ...o }) : new RMSNorm(dim, { eps: 1e-6, ...o });

export class VisionBlock extends Module {
  norm1: VisionNorm;
  norm2: VisionNorm;
  attn: VisionAttention;
  mlp: VisionMlp | VisionGatedMlp;

  constructor(family: QwenFamily, c: QwenVisionConfig, o: ModelPlacement = {}) {
    super();
    this.norm1 = this.addModule("norm1", visionNorm(family, c.width, o));
    this.norm2 = this.addModule("norm2", visionNorm(family, c.width, o));
    this.attn = this.addModule("attn", new VisionAttention(c, o));
    this.mlp = this.addModule("mlp", family === "qwen2_vl" ? new VisionMlp(c, o) : new VisionGatedMlp(c, o));
  }

  forward(x: Tensor, cos: Tensor, sin: Tensor, plan: SegmentPlan): Tensor {
    return tidy(() => {
      const h = x.add(this.attn.forward(this.norm1.forward(x), cos, sin, plan));
      return h.add(this.mlp.forward(this.norm2.forward(h)));
    });
  }
}

/** merger.mlp: Linear "0" -> GELU -> Linear "2" (the indices of transformers' nn.Sequential). */
export class MergerMlp extends Module {
  readonly first: Linear;
  readonly second: Linear;

  constructor(inDim: number, outDim: number, o: ModelPlacement = {}) {
    super();
    this.first = this.addModule("0", new Linear(inDim, inDim, { bias: true, ...o }));
    this.second = this.addModule("2", new Linear(inDim, outDim, { bias: true, ...o }));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => this.second.forward(F.gelu(this.first.forward(x))));
  }
}

/** Normalizes each patch, concatenates each merge block's m^2 patches and projects to the text width. */
export class PatchMerger extends Module {
  ln_q: VisionNorm;
  mlp: MergerMlp;
  readonly mergedDim: number;

  constructor(family: QwenFamily, c: QwenVisionConfig, o: ModelPlacement = {}) {
    super();
    this.mergedDim = c.width * c.spatialMergeSize * c.spatialMergeSize;
    this.ln_q = this.addModule("ln_q", visionNorm(family, c.width, o));
    this.mlp = this.addModule("mlp", new MergerMlp(this.mergedDim, c.outHiddenSize, o));
  }

  /** (N, width) -> (N / m^2, outHidden) */
  forward(x: Tensor): Tensor {
    return tidy(() => this.mlp.forward(this.ln_q.forward(x).reshape(-1, this.mergedDim)));
  }
}

/** The whole tower: pixel_values rows + grids -> merged image features. */
export class QwenVisionTransformer extends Module {
  patch_embed: PatchEmbed;
  blocks: ModuleList<VisionBlock>;
  merger: PatchMerger;
  readonly family: QwenFamily;
  readonly config: QwenVisionConfig;
  readonly rotary: VisionRotaryEmbedding;

  constructor(family: QwenFamily, c: QwenVisionConfig, o: ModelPlacement = {}) {
    super();
    this.family = family;
    this.config = c;
    this.patch_embed = this.addModule("patch_embed", new PatchEmbed(c.width, c, o));
    this.blocks = this.addModule("blocks", new ModuleList(Array.from({ length: c.depth }, () => new VisionBlock(family, c, o))));
    this.merger = this.addModule("merger", new PatchMerger(family, c, o));
    this.rotary = new VisionRotaryEmbedding(c.width / c.numHeads, c.ropeTheta);
  }

  protected override onDispose(): void {
    this.rotary.dispose();
  }

  /**
   * pixels [N, C*T*P*P] (N = sum of t*h*w over the images) and the images'
   * grids -> features [N / m^2, outHidden], image after image, each image's
   * merged tokens row-major.
   */
  forward(pixels: Tensor, gridsIn: readonly (readonly number[])[]): Tensor {
    const c = this.config;
    const m = c.spatialMergeSize;
    const unit = m * m;
    const grids: GridThw[] = checkGrids(gridsIn, m, "vision tower");
    const n = grids.reduce((a, g) => a + patchCount(g), 0);
    const dim = this.patch_embed.patchDim;
    if (pixels.ndim !== 2 || pixels.size(0) !== n || pixels.size(1) !== dim) {
      throw new Error(
        `vision tower: pixel_values must be [${n}, ${dim}] (sum of t*h*w over image_grid_thw [${grids.map((g) => `[${g.join(", ")}]`).join(", ")}], C*T*P*P), got [${pixels.shape.join(", ")}]`,
      );
    }
    const device = pixels.device;
    const window = this.family === "qwen2_5_vl" ? windowLayout(grids, m, c.windowSize, c.patchSize) : null;
    const full = new SegmentPlan(frameSegments(grids), device);
    const windowed = window ? new SegmentPlan(window.windowSegments, device) : null;
    const fullAt = new Set(c.fullattBlockIndexes);
    try {
      return tidy(() => {
        let x = this.patch_embed.forward(pixels); // (N, width)
        const positions = tensor(visionPositions(grids, m), { dtype: "int64", device }).view(n, 2);
        let { cos, sin } = this.rotary.cosSin(positions); // (N, d) float32
        let toWindows: Tensor | null = null;
        if (window) {
          // Rows to window order, in whole merge blocks: (N/m^2, m^2, *) indexed by the window index.
          toWindows = tensor(window.windowIndex, { dtype: "int64", device });
          const permute = (t: Tensor) => t.reshape(n / unit, unit, t.size(-1)).indexSelect(0, toWindows!).reshape(n, t.size(-1));
          [x, cos, sin] = [permute(x), permute(cos), permute(sin)];
        }
        for (let i = 0; i < this.blocks.length; i++) {
          const plan = windowed && !fullAt.has(i) ? windowed : full;
          const next = this.blocks.at(i).forward(x, cos, sin, plan);
          x.dispose();
          x = next;
        }
        const merged = this.merger.forward(x); // (N/m^2, outHidden), window order for 2.5
        if (!toWindows) return merged;
        return merged.indexSelect(0, tensor(inversePermutation(window!.windowIndex), { dtype: "int64", device }));
      });
    } finally {
      full.dispose();
      windowed?.dispose();
    }
  }
}
