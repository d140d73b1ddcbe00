// Idefics3 (SmolVLM) config.json: a SigLIP-style vision_config, a Llama
// text_config and the connector's scale factor, resolved against
// transformers' Idefics3Config defaults:
//   image_token_id 128257, scale_factor 2, pad_token_id 128002, tie_word_embeddings false;
//   a missing text_config is LlamaConfig with rms_norm_eps 1e-5 and pad_token_id 128002;
//   a given text_config gets the LlamaConfig defaults (see ../configs.ts).
import {
  type LlamaConfig,
  llamaConfigToJson,
  type RawConfig,
  Reader,
  resolveLlamaConfig,
  resolveVisionConfig,
  sortKeys,
  type VisionConfig,
  visionConfigToJson,
  WRITTEN_TRANSFORMERS_VERSION,
} from "../configs.js";

export interface Idefics3Config {
  modelType: "idefics3";
  vision: VisionConfig;
  text: LlamaConfig;
  scaleFactor: number;
  imageTokenId: number;
  /** lm_head shares model.text_model.embed_tokens.weight. */
  tieWordEmbeddings: boolean;
  padTokenId: number | null;
  /** Tokens per image after the connector: floor(imageSize / patchSize)^2 / scaleFactor^2. */
  imageSeqLen: number;
  raw: RawConfig;
}

export function resolveIdefics3Config(raw: RawConfig, where = "config.json"): Idefics3Config {
  const r = new Reader(raw, where);
  const padTokenId = r.tokenId("pad_token_id", 128002);
  const textRaw = r.obj("text_config");
  const text = textRaw
    ? resolveLlamaConfig(textRaw, `${where}: text_config`)
    : resolveLlamaConfig({}, `${where}: text_config`, { rms_norm_eps: 1e-5, pad_token_id: padTokenId, tie_word_embeddings: false });
  const vision = resolveVisionConfig(r.obj("vision_config") ?? {}, `${where}: vision_config`);
  const scaleFactor = r.int("scale_factor", 2);
  // transformers floors: a partial patch at the edge of a tile is dropped (SmolVLM-Instruct: 384 px / patch 14 = 27 patches, 6 px unused).
  const side = Math.floor(vision.imageSize / vision.patchSize);
  if (side % scaleFactor !== 0) {
    throw new Error(`${where}: patches per side (floor(image_size ${vision.imageSize} / patch_size ${vision.patchSize}) = ${side}) is not a multiple of scale_factor ${scaleFactor}`);
  }
  // Tying: Idefics3Config's own top-level flag only (default false), as
  // transformers 5.x reads it (its tie logic looks at the model's own config;
  // unlike Qwen2-VL's config, Idefics3's does not forward text_config's flag).
  const tie = r.bool("tie_word_embeddings", false);
  return {
    modelType: "idefics3",
    vision,
    text: { ...text, tieWordEmbeddings: tie },
    scaleFactor,
    imageTokenId: r.int("image_token_id", 128257, 0),
    tieWordEmbeddings: tie,
    padTokenId,
    imageSeqLen: (side / scaleFactor) ** 2,
    raw: { ...raw },
  };
}

export function idefics3ConfigToJson(c: Idefics3Config, opts: { torchDtype?: string } = {}): RawConfig {
  const out: RawConfig = {
    ...c.raw,
    architectures: ["Idefics3ForConditionalGeneration"],
    model_type: "idefics3",
    image_token_id: c.imageTokenId,
    scale_factor: c.scaleFactor,
    tie_word_embeddings: c.tieWordEmbeddings,
    pad_token_id: c.padTokenId,
    use_cache: c.raw.use_cache ?? true,
    vocab_size: c.text.vocabSize,
    text_config: llamaConfigToJson({ ...c.text, tieWordEmbeddings: c.tieWordEmbeddings }),
    vision_config: visionConfigToJson(c.vision),
    transformers_version: c.raw.transformers_version ?? WRITTEN_TRANSFORMERS_VERSION,
  };
  if (opts.torchDtype) out.torch_dtype = opts.torchDtype;
  return sortKeys(out);
}
