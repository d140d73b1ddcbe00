// Model FLOPs of generation and of a GRPO step, for the model-FLOPs
// utilization (MFU) the benchmarks report. Matmuls only, 2 FLOPs per
// multiply-add; norms, activations, softmax and embedding lookups are not
// counted (they are < 1% at these shapes).
//
// Per token of the decoder: 2 x (q, k, v, o, gate, up, down weights), plus
// LoRA 2 x r x (in + out) per adapted projection. Attention: 4 x layers x
// (heads x head_dim) per query-key pair (scores and weighted values), causal:
// a T-token pass attends T(T+1)/2 pairs; a decode step at position p attends
// p + 1 keys. lm_head: 2 x hidden x vocab per logit computed (one per row for
// a prefill, one per decode step, C + 1 per row when scoring C completion
// tokens).
// Vision tower per image of Np patches: patch embedding 2 x Np x (patch
// pixels) x width; per block 2 x Np x (4 x width^2 + MLP weights) plus
// attention 4 x Np x span x width, span = Np for full-attention blocks and
// the window's patch count for Qwen2.5-VL's windowed blocks; connector:
// Idefics3's pixel-shuffle linear (2 x Np x width x hidden), Qwen's patch
// merger MLP (2 x Np/4 x (16 width^2 + 4 width x hidden)).
// Backward multiplies the forward: x3 where weights are trained (LoRA
// adapters) and for attention, x2 for frozen weights on the gradient path
// (base projections and lm_head under LoRA: input gradients only), x1 for the
// frozen vision tower and connector (nothing upstream needs gradients).
import type { FamilyConfig } from "../src/models/index.js";

export interface DecoderShape {
  layers: number;
  hidden: number;
  /** heads x head_dim. */
  qDim: number;
  /** kv heads x head_dim. */
  kvDim: number;
  intermediate: number;
  vocab: number;
}

export interface VisionShape {
  layers: number;
  width: number;
  /** MLP weight elements per block (2 x width x I, or 3 x for a gated MLP). */
  mlpWeights: number;
  /** Input elements of one patch (channels x [temporal x] patch^2). */
  patchPixels: number;
  /** Per block: the key span of a patch (null = the whole image). */
  spans: (number | null)[];
  connector: "pixel_shuffle" | "patch_merger";
}

export interface ModelShape {
  decoder: DecoderShape;
  vision: VisionShape;
}

/** The shapes FLOPs need, from a resolved Idefics3 or Qwen2-VL / Qwen2.5-VL config. */
export function modelShape(config: FamilyConfig): ModelShape {
  // biome-ignore lint: the two families' configs are read field by field
  const c = config as any;
  const t = c.text;
  const decoder: DecoderShape = {
    layers: t.numHiddenLayers,
    hidden: t.hiddenSize,
    qDim: t.numAttentionHeads * t.headDim,
    kvDim: t.numKeyValueHeads * t.headDim,
    intermediate: t.intermediateSize,
    vocab: t.vocabSize,
  };
  const v = c.vision;
  if (config.modelType === "idefics3") {
    return {
      decoder,
      vision: {
        layers: v.numHiddenLayers,
        width: v.hiddenSize,
        mlpWeights: 2 * v.hiddenSize * v.intermediateSize,
        patchPixels: v.numChannels * v.patchSize ** 2,
        spans: new Array(v.numHiddenLayers).fill(null),
        connector: "pixel_shuffle",
      },
    };
  }
  if (config.modelType === "qwen2_vl" || config.modelType === "qwen2_5_vl") {
    const gated = config.modelType === "qwen2_5_vl";
    const windowPatches = gated ? (v.windowSize / v.patchSize) ** 2 : null;
    const full = new Set<number>(gated ? v.fullattBlockIndexes : []);
    return {
      decoder,
      vision: {
        layers: v.depth,
        width: v.width,
        mlpWeights: (gated ? 3 : 2) * v.width * v.intermediateSize,
        patchPixels: v.inChannels * v.temporalPatchSize * v.patchSize ** 2,
        spans: Array.from({ length: v.depth }, (_, i) => (gated && !full.has(i) ? windowPatches : null)),
        connector: "patch_merger",
      },
    };
  }
  throw new Error(`bench flops: no FLOP model for model_type '${config.modelType}'`);
}

/** Vision tower + connector FLOPs of one image of `patches` patches. */
export function visionFlops(s: ModelShape, patches: number): number {
  const v = s.vision;
  let f = 2 * patches * v.patchPixels * v.width;
  for (const span of v.spans) f += 2 * patches * (4 * v.width * v.width + v.mlpWeights) + 4 * patches * Math.min(span ?? patches, patches) * v.width;
  const h = s.decoder.hidden;
  f += v.connector === "pixel_shuffle" ? 2 * patches * v.width * h : 2 * (patches / 4) * (16 * v.width * v.width + 4 * v.width * h);
  return f;
}

/** Decoder linear FLOPs per token (no LoRA). */
export function decoderLinearFlops(d: DecoderShape): number {
  return 2 * d.layers * (d.hidden * d.qDim + 2 * d.hidden * d.kvDim + d.qDim * d.hidden + 3 * d.hidden * d.intermediate);
}

/** LoRA FLOPs per token, rank r on q, k, v, o, gate, up, down of every decoder layer (0 without LoRA). */
export function loraFlops(d: DecoderShape, rank: number): number {
  const inOut = d.hidden + d.qDim + 2 * (d.hidden + d.kvDim) + d.qDim + d.hidden + 2 * (d.hidden + d.intermediate) + d.intermediate + d.hidden;
  return 2 * d.layers * rank * inOut;
}

const attnPerPair = (d: DecoderShape) => 4 * d.layers * d.qDim;
const headPerLogit = (d: DecoderShape) => 2 * d.hidden * d.vocab;

export interface GenerationWork {
  /** Prompt length. */
  promptTokens: number;
  /** Patches of the prompt's image(s). */
  patches: number;
  /** Completions of the prompt and their length. */
  G: number;
  L: number;
  loraRank: number;
  /** Vision and prefill once for the group (group sharing) or once per completion. */
  shared: boolean;
}

/** FLOPs of sampling G completions of L tokens for one prompt. */
export function generationFlops(s: ModelShape, w: GenerationWork): number {
  const d = s.decoder;
  const perToken = decoderLinearFlops(d) + loraFlops(d, w.loraRank);
  const passes = w.shared ? 1 : w.G;
  const tp = w.promptTokens;
  let f = passes * (visionFlops(s, w.patches) + tp * perToken + (attnPerPair(d) * tp * (tp + 1)) / 2 + headPerLogit(d));
  for (let j = 1; j < w.L; j++) f += w.G * (perToken + attnPerPair(d) * (tp + j + 1) + headPerLogit(d));
  return f;
}

/** FLOPs of scoring G completions with autograd and the backward (LoRA training, frozen vision). */
export function scoringFlops(s: ModelShape, w: GenerationWork): { forward: number; backward: number } {
  const d = s.decoder;
  const T = w.promptTokens + w.L;
  const rows = w.G;
  const visionPasses = w.shared ? 1 : w.G;
  const base = rows * T * decoderLinearFlops(d);
  const lora = rows * T * loraFlops(d, w.loraRank);
  const attn = (rows * attnPerPair(d) * T * (T + 1)) / 2;
  const head = rows * (w.L + 1) * headPerLogit(d);
  const vision = visionPasses * visionFlops(s, w.patches);
  const forward = vision + base + lora + attn + head;
  // Backward: frozen base and lm_head x1 more (input gradients), adapters x2 more, attention x2 more.
  const backward = base + head + 2 * lora + 2 * attn;
  return { forward, backward };
}

/** Patches the vision tower sees for processed images (Idefics3 tiles x (image/patch)^2, floored; Qwen: the grid's t x h x w). */
export function imagePatches(config: FamilyConfig, images: { pixelValues: { shape: number[] }; imageGridThw?: { toFlatArray(): ArrayLike<number | bigint> } }): number {
  if (images.imageGridThw) {
    const g = Array.from(images.imageGridThw.toFlatArray(), Number);
    let n = 0;
    for (let i = 0; i < g.length; i += 3) n += g[i] * g[i + 1] * g[i + 2];
    return n;
  }
  // biome-ignore lint: Idefics3's vision config
  const v = (config as any).vision;
  return images.pixelValues.shape[0] * Math.floor(v.imageSize / v.patchSize) ** 2;
}
