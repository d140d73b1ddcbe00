// Qwen2-VL and Qwen2.5-VL configs in two tiers: the raw config.json object and
// a resolved, typed config with transformers 5.18's defaults (one function),
// and the config.json transformers 5.18 writes (another).
//
// Two layouts are read:
//   nested (transformers 5): text fields in "text_config", vision fields in
//     "vision_config", RoPE in text_config.rope_parameters
//     ({rope_type, rope_theta, mrope_section});
//   flat (the hub's transformers 4 files, e.g. Qwen2.5-VL-3B-Instruct): text
//     fields at the top level, rope_theta + rope_scaling ({type: "mrope",
//     mrope_section}), torch_dtype.
// As transformers, rope_scaling wins over rope_parameters, rope_type "mrope"
// means "default", and a text_config's tie_word_embeddings: true ties the
// model when the top level does not. The nested layout is written, as
// transformers 5.18 writes it after loading either (fields it does not know
// are kept, top-level text fields move into text_config, torch_dtype becomes
// dtype).
//
// Defaults (transformers 5.18's config classes):
//   text (Qwen2VLTextConfig / Qwen2_5_VLTextConfig): vocab_size 152064, hidden_size 8192,
//     intermediate_size 29568, num_hidden_layers 80, num_attention_heads 64,
//     num_key_value_heads 8 (null: = heads), hidden_act silu, max_position_embeddings 32768,
//     initializer_range 0.02, rms_norm_eps 1e-5, use_cache true, use_sliding_window false,
//     sliding_window 4096 (null unless use_sliding_window), max_window_layers 80,
//     attention_dropout 0, rope_theta 1e6, mrope_section [16, 24, 24],
//     bos 151643, eos 151645, pad null. head_dim is hidden_size / num_attention_heads
//     (the attention ignores a "head_dim" field).
//   vision, Qwen2-VL (Qwen2VLVisionConfig): depth 32, embed_dim 1280, hidden_size 3584 (the
//     merger's output width), hidden_act quick_gelu, mlp_ratio 4, num_heads 16,
//     in_channels 3, patch_size 14, spatial_merge_size 2, temporal_patch_size 2,
//     initializer_range 0.02, rope_theta 10000.
//   vision, Qwen2.5-VL (Qwen2_5_VLVisionConfig): depth 32, hidden_size 3584 (block width),
//     hidden_act silu, intermediate_size 3420, num_heads 16, in_channels 3, patch_size 14,
//     spatial_merge_size 2, temporal_patch_size 2, tokens_per_second 4, window_size 112,
//     out_hidden_size 3584, fullatt_block_indexes [7, 15, 23, 31], initializer_range 0.02,
//     rope_theta 10000.
//   top: image_token_id 151655, video_token_id 151656, vision_start_token_id 151652,
//     vision_end_token_id 151653, tie_word_embeddings false.
import { FieldReader, isObject, omitKeys, type RawConfig, sortKeys } from "./fields.js";

export type { RawConfig } from "./fields.js";

export type QwenFamily = "qwen2_vl" | "qwen2_5_vl";
export const QWEN_FAMILIES: readonly QwenFamily[] = ["qwen2_vl", "qwen2_5_vl"];

/** The architectures entry of each family. */
export const QWEN_ARCHITECTURES: Record<QwenFamily, string> = {
  qwen2_vl: "Qwen2VLForConditionalGeneration",
  qwen2_5_vl: "Qwen2_5_VLForConditionalGeneration",
};

/** transformers_version written into config.json (the layout written is 5.18's). */
export const QWEN_WRITTEN_TRANSFORMERS_VERSION = "5.18.0";

export interface QwenTextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  /** hidden_size / num_attention_heads. */
  headDim: number;
  hiddenAct: string;
  maxPositionEmbeddings: number;
  initializerRange: number;
  rmsNormEps: number;
  useCache: boolean;
  /** Always false here (sliding-window attention is rejected at resolution). */
  useSlidingWindow: false;
  maxWindowLayers: number;
  attentionDropout: number;
  ropeTheta: number;
  /** Rotary frequency pairs given to the temporal, height and width position rows; sums to headDim / 2. */
  mropeSection: [number, number, number];
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  /** Fields of the rope dict this code does not use (written back, e.g. the hub's "type": "mrope"). */
  ropeExtras: RawConfig;
  /** Fields of text_config (nested layout) this code does not use; written back. */
  extras: RawConfig;
}

export interface QwenVisionConfig {
  depth: number;
  /** Width of the vision blocks (Qwen2-VL: embed_dim; Qwen2.5-VL: hidden_size). */
  width: number;
  /** Output width of the patch merger = the text hidden size (Qwen2-VL: hidden_size; 2.5: out_hidden_size). */
  outHiddenSize: number;
  numHeads: number;
  /** Width of the block MLP (Qwen2-VL: embed_dim * mlp_ratio; 2.5: intermediate_size). */
  intermediateSize: number;
  /** Qwen2-VL only (4). */
  mlpRatio: number;
  hiddenAct: string;
  inChannels: number;
  patchSize: number;
  spatialMergeSize: number;
  temporalPatchSize: number;
  initializerRange: number;
  ropeTheta: number;
  /** Qwen2.5-VL: window side in pixels (112); its windows hold (window / merge / patch)^2 merged tokens. */
  windowSize: number;
  /** Qwen2.5-VL: blocks that attend over the whole image; the others over windows. */
  fullattBlockIndexes: number[];
  /** Qwen2.5-VL: temporal positions per second of video (unused for images). */
  tokensPerSecond: number;
  /** Fields of the vision rope dict this code does not use. */
  ropeExtras: RawConfig;
  /** Fields of vision_config this code does not use (e.g. the hub's in_chans); written back. */
  extras: RawConfig;
}

export interface QwenVLConfig {
  modelType: QwenFamily;
  text: QwenTextConfig;
  vision: QwenVisionConfig;
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  visionEndTokenId: number;
  /** lm_head shares model.language_model.embed_tokens.weight (and is not saved). */
  tieWordEmbeddings: boolean;
  /** dtype / torch_dtype of the file, if any. */
  dtype: string | null;
  /** Which layout the file used. */
  layout: "nested" | "flat";
  /** Top-level fields this code does not use (e.g. the hub's vision_token_id); written back. */
  extras: RawConfig;
  /** The object this was resolved from (the registry's FamilyConfig; writing uses the resolved fields and extras). */
  raw: RawConfig;
}

// Fields of the text config class: at the top level of a flat file they belong to the text model.
const TEXT_FIELDS = [
  "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
  "hidden_act", "max_position_embeddings", "initializer_range", "rms_norm_eps", "use_cache", "use_sliding_window",
  "sliding_window", "max_window_layers", "layer_types", "attention_dropout", "rope_parameters", "bos_token_id",
  "eos_token_id", "pad_token_id",
];
const ROPE_FIELDS = ["rope_parameters", "rope_scaling", "rope_theta"];
const TOP_FIELDS = [
  "architectures", "model_type", "text_config", "vision_config", "image_token_id", "video_token_id", "vision_start_token_id",
  "vision_end_token_id", "tie_word_embeddings", "dtype", "torch_dtype", "transformers_version",
];
const VISION_FIELDS_COMMON = [
  "model_type", "depth", "hidden_size", "hidden_act", "num_heads", "num_attention_heads", "in_channels", "patch_size",
  "spatial_merge_size", "temporal_patch_size", "initializer_range", "rope_parameters",
];
const VISION_FIELDS: Record<QwenFamily, string[]> = {
  qwen2_vl: [...VISION_FIELDS_COMMON, "embed_dim", "mlp_ratio"],
  qwen2_5_vl: [...VISION_FIELDS_COMMON, "intermediate_size", "tokens_per_second", "window_size", "out_hidden_size", "fullatt_block_indexes"],
};

/** Which family a config.json describes (model_type, else architectures[0]); null when neither. */
export function qwenFamilyOf(raw: RawConfig): QwenFamily | null {
  const mt = raw.model_type;
  if (mt === "qwen2_vl" || mt === "qwen2_5_vl") return mt;
  const archs = Array.isArray(raw.architectures) ? raw.architectures : [];
  for (const f of QWEN_FAMILIES) if (archs.includes(QWEN_ARCHITECTURES[f])) return f;
  return null;
}

function resolveTextRope(r: FieldReader, flatTheta: unknown): { ropeTheta: number; mropeSection: [number, number, number]; ropeExtras: RawConfig } {
  // transformers: rope_parameters = rope_scaling or rope_parameters; rope_theta from the dict, else the field, else 1e6.
  const dict = r.obj("rope_scaling") ?? r.obj("rope_parameters") ?? {};
  const where = `${r.where}: ${r.has("rope_scaling") ? "rope_scaling" : "rope_parameters"}`;
  const type = dict.rope_type ?? dict.type ?? "default";
  if (type !== "default" && type !== "mrope") {
    throw new Error(`${where}: rope_type ${JSON.stringify(type)} is not supported for Qwen2-VL's multimodal RoPE (supported: "default", "mrope")`);
  }
  const thetaRaw = dict.rope_theta ?? flatTheta ?? 1e6;
  if (typeof thetaRaw !== "number" || !(thetaRaw > 0)) throw new Error(`${where}: rope_theta must be a positive number, got ${JSON.stringify(thetaRaw)}`);
  const sec = dict.mrope_section ?? [16, 24, 24];
  if (!Array.isArray(sec) || sec.length !== 3 || !sec.every((x) => Number.isInteger(x) && x >= 0)) {
    throw new Error(`${where}: mrope_section must be three non-negative integers (temporal, height, width), got ${JSON.stringify(sec)}`);
  }
  const ropeExtras = omitKeys(dict, ["rope_type", "rope_theta", "mrope_section"]);
  return { ropeTheta: thetaRaw, mropeSection: sec as [number, number, number], ropeExtras };
}

/** Resolves the text part (a text_config object, or the top level of a flat file). */
export function resolveQwenTextConfig(raw: RawConfig, where: string, knownOnly = false): QwenTextConfig {
  const r = new FieldReader(raw, where);
  const hiddenSize = r.int("hidden_size", 8192);
  const numAttentionHeads = r.int("num_attention_heads", 64);
  const numKeyValueHeads = r.int("num_key_value_heads", 8);
  if (hiddenSize % numAttentionHeads !== 0) throw new Error(`${where}: hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numAttentionHeads}`);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new Error(`${where}: num_attention_heads ${numAttentionHeads} is not a multiple of num_key_value_heads ${numKeyValueHeads}`);
  }
  const headDim = hiddenSize / numAttentionHeads;
  if (r.bool("use_sliding_window", false)) {
    throw new Error(`${where}: use_sliding_window true is not supported (sliding-window attention is not implemented; every released Qwen2-VL / Qwen2.5-VL checkpoint has it off)`);
  }
  const { ropeTheta, mropeSection, ropeExtras } = resolveTextRope(r, raw.rope_theta);
  if (mropeSection[0] + mropeSection[1] + mropeSection[2] !== headDim / 2) {
    throw new Error(`${where}: mrope_section [${mropeSection.join(", ")}] must sum to head_dim / 2 = ${headDim / 2} (head_dim = hidden_size / num_attention_heads = ${headDim})`);
  }
  const known = [...TEXT_FIELDS, ...ROPE_FIELDS, "model_type", "head_dim"];
  return {
    vocabSize: r.int("vocab_size", 152064),
    hiddenSize,
    intermediateSize: r.int("intermediate_size", 29568),
    numHiddenLayers: r.int("num_hidden_layers", 80),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    hiddenAct: r.str("hidden_act", "silu"),
    maxPositionEmbeddings: r.int("max_position_embeddings", 32768),
    initializerRange: r.num("initializer_range", 0.02),
    rmsNormEps: r.num("rms_norm_eps", 1e-5),
    useCache: r.bool("use_cache", true),
    useSlidingWindow: false,
    maxWindowLayers: r.int("max_window_layers", 80, 0),
    attentionDropout: r.num("attention_dropout", 0),
    ropeTheta,
    mropeSection,
    bosTokenId: r.tokenId("bos_token_id", 151643),
    eosTokenId: r.tokenIds("eos_token_id", 151645),
    padTokenId: r.tokenId("pad_token_id", null),
    ropeExtras,
    extras: knownOnly ? {} : omitKeys(raw, known),
  };
}

/** Resolves vision_config for a family. */
export function resolveQwenVisionConfig(family: QwenFamily, raw: RawConfig, where: string): QwenVisionConfig {
  const r = new FieldReader(raw, where);
  const is25 = family === "qwen2_5_vl";
  const headsKey = r.first("num_heads", "num_attention_heads") ?? "num_heads";
  const numHeads = r.int(headsKey, 16);
  const width = is25 ? r.int("hidden_size", 3584) : r.int("embed_dim", 1280);
  const widthKey = is25 ? "hidden_size" : "embed_dim";
  if (width % numHeads !== 0) throw new Error(`${where}: ${widthKey} ${width} is not a multiple of num_heads ${numHeads}`);
  if ((width / numHeads) % 4 !== 0) throw new Error(`${where}: head dim ${widthKey} / num_heads = ${width / numHeads} must be a multiple of 4 (2-D rotary embeddings)`);
  for (const k of ["patch_size", "temporal_patch_size"]) {
    if (Array.isArray(raw[k])) throw new Error(`${where}: field "${k}" must be one integer; per-axis sizes are not supported`);
  }
  const mlpRatio = is25 ? 4 : r.int("mlp_ratio", 4);
  const rope = r.obj("rope_parameters") ?? {};
  const ropeTheta = typeof rope.rope_theta === "number" ? rope.rope_theta : 10000;
  if (rope.rope_type !== undefined && rope.rope_type !== "axial") {
    throw new Error(`${where}: rope_parameters.rope_type ${JSON.stringify(rope.rope_type)} is not supported (the vision tower's rotary embedding is "axial")`);
  }
  const depth = r.int("depth", 32);
  const fullatt = is25 ? r.ints("fullatt_block_indexes", [7, 15, 23, 31]) : [];
  const outOfRange = fullatt.filter((i) => i >= depth);
  if (outOfRange.length) throw new Error(`${where}: fullatt_block_indexes [${outOfRange.join(", ")}] out of range for depth ${depth}`);
  const out: QwenVisionConfig = {
    depth,
    width,
    outHiddenSize: is25 ? r.int("out_hidden_size", 3584) : r.int("hidden_size", 3584),
    numHeads,
    intermediateSize: is25 ? r.int("intermediate_size", 3420) : width * mlpRatio,
    mlpRatio,
    hiddenAct: r.str("hidden_act", is25 ? "silu" : "quick_gelu"),
    inChannels: r.int("in_channels", 3),
    patchSize: r.int("patch_size", 14),
    spatialMergeSize: r.int("spatial_merge_size", 2),
    temporalPatchSize: r.int("temporal_patch_size", 2),
    initializerRange: r.num("initializer_range", 0.02),
    ropeTheta,
    windowSize: is25 ? r.int("window_size", 112) : 0,
    fullattBlockIndexes: fullatt,
    tokensPerSecond: is25 ? r.int("tokens_per_second", 4) : 0,
    ropeExtras: omitKeys(rope, ["rope_type", "rope_theta"]),
    extras: omitKeys(raw, VISION_FIELDS[family]),
  };
  if (is25) {
    const unit = out.spatialMergeSize * out.patchSize;
    if (out.windowSize % unit !== 0) throw new Error(`${where}: window_size ${out.windowSize} must be a multiple of spatial_merge_size * patch_size = ${unit}`);
  }
  return out;
}

/** Resolves a Qwen2-VL or Qwen2.5-VL config.json object (either layout). */
export function resolveQwenConfig(raw: RawConfig, where = "config.json"): QwenVLConfig {
  if (!isObject(raw)) throw new Error(`${where}: expected a JSON object`);
  const family = qwenFamilyOf(raw);
  if (!family) {
    throw new Error(`${where}: not a Qwen2-VL / Qwen2.5-VL config (model_type ${JSON.stringify(raw.model_type)}, architectures ${JSON.stringify(raw.architectures)})`);
  }
  const r = new FieldReader(raw, where);
  const textRaw = r.obj("text_config");
  const layout = textRaw ? "nested" : "flat";
  let text: QwenTextConfig;
  if (textRaw) {
    text = resolveQwenTextConfig(textRaw, `${where}: text_config`);
  } else {
    const picked = Object.fromEntries([...TEXT_FIELDS, ...ROPE_FIELDS].filter((k) => k in raw).map((k) => [k, raw[k]]));
    text = resolveQwenTextConfig(picked, where, true);
  }
  const vision = resolveQwenVisionConfig(family, r.obj("vision_config") ?? {}, `${where}: vision_config`);
  if (vision.outHiddenSize !== text.hiddenSize) {
    const key = family === "qwen2_5_vl" ? "out_hidden_size" : "hidden_size";
    throw new Error(`${where}: vision_config.${key} ${vision.outHiddenSize} must equal the text hidden_size ${text.hiddenSize} (image features replace token embeddings)`);
  }
  const tieTop = r.bool("tie_word_embeddings", false);
  const dtypeRaw = raw.dtype ?? raw.torch_dtype ?? null;
  if (dtypeRaw !== null && typeof dtypeRaw !== "string") throw new Error(`${where}: field "dtype" must be a string, got ${JSON.stringify(dtypeRaw)}`);
  const topKnown = [...TOP_FIELDS, ...(layout === "flat" ? [...TEXT_FIELDS, ...ROPE_FIELDS] : [])];
  return {
    modelType: family,
    text,
    vision,
    imageTokenId: r.int("image_token_id", 151655, 0),
    videoTokenId: r.int("video_token_id", 151656, 0),
    visionStartTokenId: r.int("vision_start_token_id", 151652, 0),
    visionEndTokenId: r.int("vision_end_token_id", 151653, 0),
    tieWordEmbeddings: tieTop || textRaw?.tie_word_embeddings === true,
    dtype: dtypeRaw,
    layout,
    extras: omitKeys(raw, topKnown),
    raw: { ...raw },
  };
}

// ---- writing ---------------------------------------------------------------------------

export interface QwenConfigJsonOptions {
  /** dtype recorded (default the config's own; omitted when neither). */
  dtype?: string;
}

function textJson(family: QwenFamily, t: QwenTextConfig, dtypeFromFlat: string | null): RawConfig {
  const out: RawConfig = {
    ...t.extras,
    attention_dropout: t.attentionDropout,
    bos_token_id: t.bosTokenId,
    eos_token_id: t.eosTokenId,
    hidden_act: t.hiddenAct,
    hidden_size: t.hiddenSize,
    initializer_range: t.initializerRange,
    intermediate_size: t.intermediateSize,
    layer_types: Array.from({ length: t.numHiddenLayers }, () => "full_attention"),
    max_position_embeddings: t.maxPositionEmbeddings,
    max_window_layers: t.maxWindowLayers,
    model_type: `${family}_text`,
    num_attention_heads: t.numAttentionHeads,
    num_hidden_layers: t.numHiddenLayers,
    num_key_value_heads: t.numKeyValueHeads,
    pad_token_id: t.padTokenId,
    rms_norm_eps: t.rmsNormEps,
    rope_parameters: sortKeys({ ...t.ropeExtras, mrope_section: [...t.mropeSection], rope_theta: t.ropeTheta, rope_type: "default" }),
    sliding_window: null,
    use_cache: t.useCache,
    use_sliding_window: false,
    vocab_size: t.vocabSize,
  };
  // transformers hands a flat file's dtype to the text config it builds.
  if (dtypeFromFlat !== null) out.dtype = dtypeFromFlat;
  return sortKeys(out);
}

function visionJson(family: QwenFamily, v: QwenVisionConfig): RawConfig {
  const common: RawConfig = {
    ...v.extras,
    depth: v.depth,
    hidden_act: v.hiddenAct,
    in_channels: v.inChannels,
    initializer_range: v.initializerRange,
    model_type: `${family}_vision`,
    num_heads: v.numHeads,
    patch_size: v.patchSize,
    rope_parameters: sortKeys({ ...v.ropeExtras, rope_theta: v.ropeTheta, rope_type: "axial" }),
    spatial_merge_size: v.spatialMergeSize,
    temporal_patch_size: v.temporalPatchSize,
  };
  if (family === "qwen2_vl") return sortKeys({ ...common, embed_dim: v.width, hidden_size: v.outHiddenSize, mlp_ratio: v.mlpRatio });
  return sortKeys({
    ...common,
    fullatt_block_indexes: [...v.fullattBlockIndexes],
    hidden_size: v.width,
    intermediate_size: v.intermediateSize,
    out_hidden_size: v.outHiddenSize,
    tokens_per_second: v.tokensPerSecond,
    window_size: v.windowSize,
  });
}

/** config.json as transformers 5.18 writes it for this config (nested layout, sorted keys). */
export function qwenConfigToJson(c: QwenVLConfig, opts: QwenConfigJsonOptions = {}): RawConfig {
  const dtype = opts.dtype ?? c.dtype;
  const out: RawConfig = {
    ...c.extras,
    architectures: [QWEN_ARCHITECTURES[c.modelType]],
    image_token_id: c.imageTokenId,
    model_type: c.modelType,
    text_config: textJson(c.modelType, c.text, c.layout === "flat" ? c.dtype : null),
    tie_word_embeddings: c.tieWordEmbeddings,
    transformers_version: QWEN_WRITTEN_TRANSFORMERS_VERSION,
    video_token_id: c.videoTokenId,
    vision_config: visionJson(c.modelType, c.vision),
    vision_end_token_id: c.visionEndTokenId,
    vision_start_token_id: c.visionStartTokenId,
  };
  if (dtype) out.dtype = dtype;
  return sortKeys(out);
}

/** generation_config.json as transformers derives it from the model config. */
export function qwenGenerationConfigJson(c: QwenVLConfig): RawConfig {
  const out: RawConfig = { _from_model_config: true };
  if (c.text.bosTokenId !== null) out.bos_token_id = c.text.bosTokenId;
  if (c.text.eosTokenId !== null) out.eos_token_id = c.text.eosTokenId;
  if (c.text.padTokenId !== null) out.pad_token_id = c.text.padTokenId;
  Object.assign(out, { output_attentions: false, output_hidden_states: false, transformers_version: QWEN_WRITTEN_TRANSFORMERS_VERSION, use_cache: true });
  return sortKeys(out);
}
