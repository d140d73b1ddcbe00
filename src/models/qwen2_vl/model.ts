// Qwen2-VL / Qwen2.5-VL for conditional generation (transformers'
// Qwen2VLForConditionalGeneration and Qwen2_5_VLForConditionalGeneration):
// vision tower -> image features written over the <|image_pad|> tokens'
// embeddings (row-major over [B, T], transformers' masked_scatter) -> Qwen2
// decoder with multimodal RoPE -> lm_head (tied to the embeddings when the
// config says so).
//
// Module paths are transformers 5's module tree: model.visual.*,
// model.language_model.*, lm_head.weight. Checkpoints store them under
// visual.*, model.* and lm_head.* (the hub's layout, which transformers 5.18's
// save_pretrained also writes); see checkpoint.ts.
import { type KVCache, type KVCacheOptions, Linear, Module } from "../../nn/index.js";
import { type Tensor, tidy } from "../../torch/index.js";
import { type CausalLMOutput, checkIds, LLAMA_LORA_TARGETS, type LlamaModel, lmLogits, type ModelPlacement } from "../llama.js";
import type { ImageInputs, ModuleScopes, PrefillPositions, VisionLanguageModel } from "../vlm.js";
import type { QwenVLConfig } from "./config.js";
import { decodePositionIds, gridsOf, type RopeIndex, ropeIndex } from "./positions.js";
import { buildQwenDecoder } from "./text.js";
import { QwenVisionTransformer } from "./vision.js";

export interface QwenVLInputs {
  /** [B, T] int64 token ids. */
  inputIds: Tensor;
  /** [B, past + T] of 0/1 (left padding allowed). Default: all ones. */
  attentionMask?: Tensor;
  /**
   * [3, B, T] int64 (temporal, height, width). Default without a cache (or an
   * empty one): ropeIndex(inputIds, attentionMask, imageGridThw). With a
   * filled cache they must be given (decodePositionIds(mask, ropeDeltas)).
   */
  positionIds?: Tensor;
  /** Keys/values of earlier positions; updated in place with the T new ones. */
  cache?: KVCache;
  /** Every image's patches, image after image: [sum t*h*w, C*T*P*P] (any float dtype). */
  pixelValues?: Tensor;
  /** [numImages, 3] int64 (t, h, w) patch grid per image; needed with pixelValues, and for default positions when the prompt has images. */
  imageGridThw?: Tensor;
  /** Precomputed encodeImages() output [sum t*h*w/m^2, hidden] (instead of pixelValues). */
  imageFeatures?: Tensor;
  /** Compute logits for the last k positions only (default: all). */
  logitsToKeep?: number;
}

export class QwenVLModel extends Module {
  visual: QwenVisionTransformer;
  language_model: LlamaModel;

  constructor(c: QwenVLConfig, o: ModelPlacement = {}) {
    super();
    this.visual = this.addModule("visual", new QwenVisionTransformer(c.modelType, c.vision, o));
    this.language_model = this.addModule("language_model", buildQwenDecoder(c.text, c.tieWordEmbeddings, o));
  }
}

/** Qwen2VLForConditionalGeneration / Qwen2_5_VLForConditionalGeneration (config.modelType says which). */
export class QwenVLForConditionalGeneration extends Module implements VisionLanguageModel {
  model: QwenVLModel;
  lm_head: Linear;
  readonly config: QwenVLConfig;
  /** The merger is the connector (vision tokens -> decoder width); the rest of model.visual is the vision tower. */
  readonly moduleScopes: ModuleScopes = { vision: ["model.visual"], connector: ["model.visual.merger"] };
  /** Qwen2's decoder projections carry Llama's names (Qwen2.5-VL's vision MLP does too, hence the scopes). */
  readonly defaultLoraTargets = LLAMA_LORA_TARGETS;
  /** The architecture's parameter paths, recorded before anything (LoRA) is added to the tree. */
  private readonly baseParameterPaths: string[];

  constructor(c: QwenVLConfig, o: ModelPlacement = {}) {
    super();
    this.config = c;
    this.model = this.addModule("model", new QwenVLModel(c, o));
    // Tied: lm_head.weight is model.language_model.embed_tokens.weight (stored once, under the latter).
    const shared = c.tieWordEmbeddings ? this.model.language_model.embed_tokens.weight : undefined;
    this.lm_head = this.addModule("lm_head", new Linear(c.text.hiddenSize, c.text.vocabSize, { bias: false, ...o, weight: shared }));
    this.baseParameterPaths = this.namedParameters().map(([k]) => k);
  }

  get imageTokenId(): number {
    return this.config.imageTokenId;
  }

  get tiedWordEmbeddings(): boolean {
    return this.config.tieWordEmbeddings;
  }

  /** Vision placeholder ids a completion must never contain (image/video pads, vision start/end, the hub's vision_token_id). */
  get suppressTokenIds(): number[] {
    const c = this.config;
    const ids = [c.imageTokenId, c.videoTokenId, c.visionStartTokenId, c.visionEndTokenId];
    const vision = c.extras.vision_token_id;
    if (typeof vision === "number" && Number.isInteger(vision)) ids.push(vision);
    return [...new Set(ids)].filter((id) => id < c.text.vocabSize);
  }

  /** The parameters a checkpoint holds, by module path (adapters added later are not part of it). */
  checkpointParameters(): Map<string, Tensor> {
    return new Map(this.baseParameterPaths.map((k) => [k, this.getParameter(k)]));
  }

  newCache(opts: KVCacheOptions = {}): KVCache {
    return this.model.language_model.newCache(opts);
  }

  /**
   * Vision tower + merger: pixels [sum t*h*w, C*T*P*P] with their grids ->
   * features [sum t*h*w/m^2, hidden] in the model's dtype. Compute once per
   * prompt and pass as imageFeatures.
   */
  encodeImages(pixelValues: Tensor, imageGridThw?: Tensor | readonly (readonly number[])[]): Tensor {
    if (!imageGridThw) throw new Error("QwenVL.encodeImages: imageGridThw is required (the (t, h, w) patch grid of each image)");
    return this.model.visual.forward(pixelValues, gridsOf(imageGridThw));
  }

  /** 3-D position ids and rope deltas of a prompt batch (transformers' get_rope_index). */
  ropeIndex(inputIds: Tensor, attentionMask?: Tensor | null, imageGridThw?: Tensor | readonly (readonly number[])[] | null): RopeIndex {
    return ropeIndex(inputIds, attentionMask, imageGridThw, { imageTokenId: this.config.imageTokenId, spatialMergeSize: this.config.vision.spatialMergeSize });
  }

  /** The interface's image encoder: [sum t*h*w/m^2, hidden], one row per <|image_pad|> token. */
  encodeImageTokens(images: ImageInputs): Tensor {
    return this.encodeImages(images.pixelValues, images.imageGridThw);
  }

  /** The prompt's M-RoPE position ids [3, B, T] and the rope deltas [B] that decoding carries on (get_rope_index). */
  prefillPositions(inputIds: Tensor, attentionMask: Tensor, images?: ImageInputs): PrefillPositions {
    const r = this.ropeIndex(inputIds, attentionMask, images?.imageGridThw ?? null);
    return { positionIds: r.positionIds, ropeDeltas: r.ropeDeltas };
  }

  /** Position ids [3, B, 1] of the next token: each row's real-token count - 1 + its rope delta. */
  decodePositions(attentionMask: Tensor, ropeDeltas?: Tensor): Tensor {
    if (!ropeDeltas) throw new Error("QwenVL.decodePositions: the prompt's rope deltas are required (prefillPositions returns them)");
    return decodePositionIds(attentionMask, ropeDeltas, 1);
  }

  /** Position ids [3, B, t] of the last t columns of attentionMask (decode steps), given the prompt's rope deltas [B]. */
  decodePositionIds(attentionMask: Tensor, ropeDeltas: Tensor, t = 1): Tensor {
    return decodePositionIds(attentionMask, ropeDeltas, t);
  }

  /** Token embeddings with the image features written over the image tokens (row-major over [B, T]). */
  embedInputs(inputIds: Tensor, imageFeatures?: Tensor | null): Tensor {
    return tidy(() => {
      const embeds = this.model.language_model.embed_tokens.forward(inputIds); // (B, T, C)
      const [b, t, c] = embeds.shape;
      const isImage = inputIds.eq(this.config.imageTokenId).flatten(); // (B*T)
      const count = Number(isImage.sum().item());
      const given = imageFeatures ? imageFeatures.size(0) : 0;
      if (imageFeatures && (imageFeatures.ndim !== 2 || imageFeatures.size(1) !== c)) {
        throw new Error(`QwenVL: imageFeatures must be [numImageTokens, ${c}], got [${imageFeatures.shape.join(", ")}]`);
      }
      // Without features, image tokens embed as ordinary tokens (as transformers; e.g. a decoded pad id).
      if (!imageFeatures) return embeds;
      if (count !== given) {
        throw new Error(
          `QwenVL: the batch has ${count} image tokens (id ${this.config.imageTokenId}) but ${given} image features were given; each image needs t*h*w/${this.config.vision.spatialMergeSize ** 2} image tokens`,
        );
      }
      const idx = isImage.nonzero().squeeze(1);
      const feats = imageFeatures.dtype === embeds.dtype ? imageFeatures : imageFeatures.to(embeds.dtype);
      return embeds.reshape(b * t, c).indexPut([idx], feats).view(b, t, c);
    });
  }

  forward(inputs: QwenVLInputs): CausalLMOutput {
    const [, t] = checkIds(inputs.inputIds, "QwenVLForConditionalGeneration.forward");
    if (inputs.pixelValues && inputs.imageFeatures) throw new Error("QwenVLForConditionalGeneration.forward: pass either pixelValues or imageFeatures, not both");
    if (inputs.pixelValues && !inputs.imageGridThw) throw new Error("QwenVLForConditionalGeneration.forward: pixelValues need imageGridThw (the (t, h, w) patch grid of each image)");
    const past = inputs.cache?.length ?? 0;
    if (past > 0 && !inputs.positionIds) {
      throw new Error(
        "QwenVLForConditionalGeneration.forward: with a filled cache, pass positionIds (decodePositionIds(attentionMask, ropeDeltas) from the prompt's ropeIndex)",
      );
    }
    return tidy(() => {
      const features = inputs.imageFeatures ?? (inputs.pixelValues ? this.encodeImages(inputs.pixelValues, inputs.imageGridThw!) : null);
      const embeds = this.embedInputs(inputs.inputIds, features);
      let positionIds = inputs.positionIds;
      if (!positionIds) {
        const mask = inputs.attentionMask && inputs.attentionMask.size(1) === t ? inputs.attentionMask : null;
        positionIds = this.ropeIndex(inputs.inputIds, mask, inputs.imageGridThw ?? null).positionIds;
      }
      const hidden = this.model.language_model.forward({ inputsEmbeds: embeds, attentionMask: inputs.attentionMask, positionIds, cache: inputs.cache });
      return { logits: lmLogits(this.lm_head, hidden, inputs.logitsToKeep) };
    });
  }
}
