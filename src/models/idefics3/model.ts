// Idefics3 (SmolVLM): SigLIP vision tower -> pixel-shuffle connector -> Llama
// decoder, as HF's Idefics3Model / Idefics3ForConditionalGeneration.
// The connector's output for image i fills, in order, the embeddings of the
// <image> tokens of the batch (row-major over [B, T], HF's inputs_merger).
// Module paths: model.vision_model.*, model.connector.modality_projection.proj.weight,
// model.text_model.* (a LlamaModel), lm_head.weight.
import { type KVCache, type KVCacheOptions, Linear, Module } from "../../nn/index.js";
import { type Tensor, tidy } from "../../torch/index.js";
import { type CausalLMInputs, type CausalLMOutput, checkIds, LLAMA_LORA_TARGETS, LlamaModel, lmLogits, type ModelPlacement } from "../llama.js";
import { SiglipVisionTransformer } from "../siglip.js";
import { decodePositionsFromMask, type ImageInputs, type ModuleScopes, positionsFromMask, type PrefillPositions, type VisionLanguageModel } from "../vlm.js";
import type { Idefics3Config } from "./config.js";
import { Idefics3Connector } from "./connector.js";


export interface Idefics3Inputs extends CausalLMInputs {
  /** All real images of the batch in order of appearance [N, 3, H, W] (any float dtype; cast to the model's). */
  pixelValues?: Tensor;
  /** [N, H, W] 0/1 or bool: which pixels are real (padding of smaller images). Default: all. */
  pixelAttentionMask?: Tensor;
  /** Precomputed encodeImages() [N, imageSeqLen, textHidden] or encodeImageTokens() [N * imageSeqLen, textHidden] (instead of pixelValues). */
  imageFeatures?: Tensor;
  /** Not an Idefics3 input (Qwen2-VL's); refused when given. */
  imageGridThw?: Tensor;
}

export class Idefics3Model extends Module {
  vision_model: SiglipVisionTransformer;
  connector: Idefics3Connector;
  text_model: LlamaModel;

  constructor(c: Idefics3Config, o: ModelPlacement = {}) {
    super();
    this.vision_model = this.addModule("vision_model", new SiglipVisionTransformer(c.vision, o));
    this.connector = this.addModule("connector", new Idefics3Connector(c, o));
    this.text_model = this.addModule("text_model", new LlamaModel(c.text, o));
  }
}

export class Idefics3ForConditionalGeneration extends Module implements VisionLanguageModel {
  model: Idefics3Model;
  lm_head: Linear;
  readonly config: Idefics3Config;
  readonly moduleScopes: ModuleScopes = { vision: ["model.vision_model"], connector: ["model.connector"] };
  readonly defaultLoraTargets = LLAMA_LORA_TARGETS;

  constructor(c: Idefics3Config, o: ModelPlacement = {}) {
    super();
    this.config = c;
    this.model = this.addModule("model", new Idefics3Model(c, o));
    const shared = c.tieWordEmbeddings ? this.model.text_model.embed_tokens.weight : undefined;
    this.lm_head = this.addModule("lm_head", new Linear(c.text.hiddenSize, c.text.vocabSize, { bias: false, ...o, weight: shared }));
  }

  get imageTokenId(): number {
    return this.config.imageTokenId;
  }

  get tiedWordEmbeddings(): boolean {
    return this.config.tieWordEmbeddings;
  }

  newCache(opts: KVCacheOptions = {}): KVCache {
    return this.model.text_model.newCache(opts);
  }

  /** 1-D RoPE: HF generate's cumsum(mask) - 1 positions; nothing carried into decoding. */
  prefillPositions(_inputIds: Tensor, attentionMask: Tensor): PrefillPositions {
    return { positionIds: positionsFromMask(attentionMask) };
  }

  decodePositions(attentionMask: Tensor, ropeDeltas?: Tensor): Tensor {
    return decodePositionsFromMask(attentionMask, ropeDeltas);
  }

  /** The interface's image encoder: [numImages * imageSeqLen, hidden] rows, one per <image> token. */
  encodeImageTokens(images: ImageInputs): Tensor {
    return tidy(() => {
      const f = this.encodeImages(images.pixelValues, images.pixelAttentionMask);
      return f.reshape(f.size(0) * f.size(1), f.size(2));
    });
  }

  /**
   * Vision tower + connector: pixels [N, 3, H, W] -> [N, imageSeqLen, textHidden]
   * in the model's dtype. Compute once per prompt and pass as imageFeatures.
   * `pixelAttentionMask` [N, H, W] marks real pixels; a patch is real when any
   * of its pixels is (HF's unfold + sum > 0).
   */
  encodeImages(pixelValues: Tensor, pixelAttentionMask?: Tensor | null): Tensor {
    const p = this.config.vision.patchSize;
    if (pixelValues.ndim !== 4) throw new Error(`Idefics3.encodeImages: pixelValues must be [N, 3, H, W], got [${pixelValues.shape.join(", ")}]`);
    const [n, , h, w] = pixelValues.shape;
    return tidy(() => {
      const dtype = this.lm_head.weight.dtype;
      const pixels = pixelValues.dtype === dtype ? pixelValues : pixelValues.to(dtype);
      let patchMask: Tensor | null = null;
      if (pixelAttentionMask) {
        const ms = pixelAttentionMask.shape;
        if (ms.length !== 3 || ms[0] !== n || ms[1] !== h || ms[2] !== w) {
          throw new Error(`Idefics3.encodeImages: pixelAttentionMask must be [${n}, ${h}, ${w}], got [${ms.join(", ")}]`);
        }
        const hp = Math.floor(h / p);
        const wp = Math.floor(w / p);
        patchMask = pixelAttentionMask.ne(0).narrow(1, 0, hp * p).narrow(2, 0, wp * p).reshape(n, hp, p, wp, p).sum([2, 4]).gt(0);
      }
      const hidden = this.model.vision_model.forward(pixels, patchMask); // (N, S, Dv)
      return this.model.connector.forward(hidden); // (N, S / s^2, Dt)
    });
  }

  /**
   * Token embeddings with the image features written over the <image> tokens
   * (row-major over [B, T]). The number of <image> tokens must equal
   * N * imageSeqLen.
   */
  embedInputs(inputIds: Tensor, imageFeatures?: Tensor | null): Tensor {
    return tidy(() => {
      const embeds = this.model.text_model.embed_tokens.forward(inputIds); // (B, T, C)
      if (!imageFeatures) return embeds;
      const [b, t, c] = embeds.shape;
      // [N, imageSeqLen, C] (encodeImages) or [N * imageSeqLen, C] (encodeImageTokens).
      if (!((imageFeatures.ndim === 3 || imageFeatures.ndim === 2) && imageFeatures.size(imageFeatures.ndim - 1) === c)) {
        throw new Error(`Idefics3: imageFeatures must be [N, imageSeqLen, ${c}] or [N * imageSeqLen, ${c}], got [${imageFeatures.shape.join(", ")}]`);
      }
      const rows = imageFeatures.ndim === 3 ? imageFeatures.size(0) * imageFeatures.size(1) : imageFeatures.size(0);
      const l = this.config.imageSeqLen;
      const isImage = inputIds.eq(this.config.imageTokenId).flatten(); // (B*T)
      const count = isImage.sum().item();
      if (count !== rows) {
        throw new Error(
          `Idefics3: the batch has ${count} <image> tokens (id ${this.config.imageTokenId}) but ${rows / l} image(s) x ${l} features per image = ${rows} were given; each image needs exactly ${l} <image> tokens`,
        );
      }
      const idx = isImage.nonzero().squeeze(1);
      const feats = imageFeatures.reshape(rows, c);
      return embeds.reshape(b * t, c).indexPut([idx], feats.dtype === embeds.dtype ? feats : feats.to(embeds.dtype)).view(b, t, c);
    });
  }

  forward(inputs: Idefics3Inputs): CausalLMOutput {
    checkIds(inputs.inputIds, "Idefics3ForConditionalGeneration.forward");
    if (inputs.pixelValues && inputs.imageFeatures) throw new Error("Idefics3ForConditionalGeneration.forward: pass either pixelValues or imageFeatures, not both");
    if (inputs.imageGridThw) throw new Error("Idefics3ForConditionalGeneration.forward: imageGridThw is a Qwen2-VL input; Idefics3 takes pixelValues (+ pixelAttentionMask)");
    return tidy(() => {
      const features = inputs.imageFeatures ?? (inputs.pixelValues ? this.encodeImages(inputs.pixelValues, inputs.pixelAttentionMask) : null);
      const embeds = this.embedInputs(inputs.inputIds, features);
      const hidden = this.model.text_model.forward({ inputsEmbeds: embeds, attentionMask: inputs.attentionMask, positionIds: inputs.positionIds, cache: inputs.cache });
      return { logits: lmLogits(this.lm_head, hidden, inputs.logitsToKeep) };
    });
  }
}
