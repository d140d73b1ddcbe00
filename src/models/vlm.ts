// The model boundary: what trainers, generation, evaluation, serving and LoRA
// see of a model. Each architecture implements it in its own folder
// (idefics3/, qwen2_vl/, ...) and registers itself in registry.ts; nothing
// above src/models names an architecture.
//
// Images travel as ImageInputs, a family's processed tensors with every field
// concatenated along dim 0 in prompt order (Idefics3: tiles [N, 3, S, S] and
// their pixel mask; Qwen2-VL: flattened patches [P, C*T*p*p] and the grid
// [N, 3]), so per-example inputs collate by concatenation whatever the family.
// Vision features are one row per image token, [numImageTokens, hidden], in
// the order the image tokens appear in the batch (row-major over [B, T]), so
// a group's features can be repeated row-wise for its G completions.
import type { KVCache, KVCacheOptions, Module } from "../nn/index.js";
import { cat, type Tensor, tidy } from "../torch/index.js";
import type { RawConfig } from "./configs.js";

/** Every resolved family config carries its model_type and the raw config.json object. */
export interface FamilyConfig {
  readonly modelType: string;
  raw: RawConfig;
}

/** A family's processed image tensors; absent fields are not used by that family. */
export interface ImageInputs {
  /** Idefics3: tiles [N, 3, S, S]; Qwen2-VL: patches [P, C * T * p * p]. */
  pixelValues: Tensor;
  /** Idefics3: [N, S, S] bool/0-1, which pixels are real. */
  pixelAttentionMask?: Tensor;
  /** Qwen2-VL: [images, 3] int64 (t, h, w) patch grid per image. */
  imageGridThw?: Tensor;
}

/** Forward inputs of any model (text-only models ignore the image fields). */
export interface ModelForwardInputs extends Partial<ImageInputs> {
  /** [B, T] int64. */
  inputIds: Tensor;
  /** [B, past + T] 0/1 (left padding allowed). Default all ones. */
  attentionMask?: Tensor;
  /** Default: computed by the model from the mask (and, for M-RoPE, the image grid). */
  positionIds?: Tensor;
  cache?: KVCache;
  /** Precomputed encodeImageTokens() rows (instead of pixelValues; grid fields may still be given). */
  imageFeatures?: Tensor;
  /** Logits for the last k positions only. */
  logitsToKeep?: number;
}

/** Positions for a prompt prefill, and what decoding needs to continue them. */
export interface PrefillPositions {
  /** [B, T] (1-D RoPE) or [3, B, T] (M-RoPE). */
  positionIds: Tensor;
  /**
   * Per row (dim 0 = batch), what decodePositions adds to a row's 1-D decode
   * position (its real-token count minus 1); absent = 0 (plain RoPE).
   * Repeated with the rows when the batch is repeated (group sharing).
   */
  ropeDeltas?: Tensor;
}

/** Any loadable causal model (text-only Llama, or a vision-language model). */
export interface PretrainedModel extends Module {
  readonly config: FamilyConfig;
  /** lm_head shares the token embeddings (saved once). */
  readonly tiedWordEmbeddings: boolean;
  forward(inputs: ModelForwardInputs): { logits: Tensor };
  newCache(opts?: KVCacheOptions): KVCache;
}

/**
 * Module path prefixes of the vision tower and the connector: LoRA's
 * includeVision / includeConnector, freezing the vision tower, and the
 * vision tower's own init use them.
 */
export interface ModuleScopes {
  vision: readonly string[];
  connector: readonly string[];
}

/** What everything above src/models sees of a vision-language model. */
export interface VisionLanguageModel extends PretrainedModel {
  /** Id of the token each image feature row replaces. */
  readonly imageTokenId: number;
  /** Vision tower + connector: [numImageTokens, hidden] in the model's dtype. */
  encodeImageTokens(images: ImageInputs): Tensor;
  /** Positions of a prompt batch (left padding allowed) and the deltas decoding carries on. */
  prefillPositions(inputIds: Tensor, attentionMask: Tensor, images?: ImageInputs): PrefillPositions;
  /** Positions of the next token of each row, from the running mask [B, past + 1]. */
  decodePositions(attentionMask: Tensor, ropeDeltas?: Tensor): Tensor;
  /** Where the vision tower and the connector sit in the module tree. */
  readonly moduleScopes: ModuleScopes;
  /** The Linear layer names PEFT usually targets for this family's decoder. */
  readonly defaultLoraTargets: readonly string[];
}

export function isVisionLanguageModel(m: PretrainedModel): m is VisionLanguageModel {
  return typeof (m as unknown as Partial<VisionLanguageModel>).encodeImageTokens === "function";
}

/** Concatenates per-example image inputs (every field along dim 0); null when none has images. */
export function catImageInputs(list: readonly (ImageInputs | null | undefined)[]): ImageInputs | null {
  const given = list.filter((x): x is ImageInputs => !!x);
  if (given.length === 0) return null;
  const fields = ["pixelValues", "pixelAttentionMask", "imageGridThw"] as const;
  return tidy(() => {
    const out: Partial<ImageInputs> = {};
    for (const f of fields) {
      const parts = given.map((g) => g[f]);
      const present = parts.filter((t): t is Tensor => !!t);
      if (present.length === 0) continue;
      if (present.length !== parts.length) throw new Error(`catImageInputs: '${f}' is given for ${present.length} of ${parts.length} examples; a family gives it for all or none`);
      out[f] = present.length === 1 ? present[0].alias() : cat(present, 0);
    }
    return out as ImageInputs;
  });
}

/** The image grids of several examples concatenated (M-RoPE needs them even when features are precomputed); undefined when none has one. */
export function catImageGrids(list: readonly (ImageInputs | null | undefined)[]): Tensor | undefined {
  const grids = list.map((x) => x?.imageGridThw).filter((t): t is Tensor => !!t);
  if (grids.length === 0) return undefined;
  return grids.length === 1 ? grids[0].alias() : cat(grids, 0);
}

/** A new handle to each tensor of an ImageInputs (the caller owns them; the originals stay). */
export function aliasImageInputs(x: ImageInputs): ImageInputs {
  const out: ImageInputs = { pixelValues: x.pixelValues.alias() };
  if (x.pixelAttentionMask) out.pixelAttentionMask = x.pixelAttentionMask.alias();
  if (x.imageGridThw) out.imageGridThw = x.imageGridThw.alias();
  return out;
}

/** Frees every tensor of an ImageInputs. */
export function disposeImageInputs(x: ImageInputs | null | undefined): void {
  if (!x) return;
  x.pixelValues.dispose();
  x.pixelAttentionMask?.dispose();
  x.imageGridThw?.dispose();
}

/** The default 1-D RoPE positions: HF generate's cumsum(mask) - 1, with 1 at padding. */
export function positionsFromMask(mask: Tensor): Tensor {
  return tidy(() => {
    const m = mask.long();
    return m.cumsum(-1).sub(1).maskedFill(m.eq(0), 1);
  });
}

/** The default 1-D decode position of each row: its real-token count - 1 (+ delta). [B, 1]. */
export function decodePositionsFromMask(mask: Tensor, ropeDeltas?: Tensor): Tensor {
  return tidy(() => {
    const pos = mask.long().sum(-1, true).sub(1);
    return ropeDeltas ? pos.add(ropeDeltas) : pos;
  });
}
