// Shared config primitives for every model family, in two tiers: the raw
// config.json object (Hugging Face's snake_case fields, any of them absent)
// and a resolved, typed config with every field filled from transformers'
// defaults, made by one function per architecture. Here: the field reader,
// the Llama decoder's config and the SigLIP vision config (shared blocks);
// each family's own config lives in its folder (idefics3/config.ts, ...). The raw object is kept so that saving writes back fields this
// code does not use (e.g. SmolVLM's "max_image_size" in vision_config).
//
// Defaults applied to absent fields (transformers' config classes):
//   llama (LlamaConfig): vocab_size 32000, hidden_size 4096, intermediate_size 11008,
//     num_hidden_layers 32, num_attention_heads 32, num_key_value_heads = num_attention_heads,
//     head_dim = hidden_size / num_attention_heads, hidden_act "silu",
//     max_position_embeddings 2048, initializer_range 0.02, rms_norm_eps 1e-6,
//     rope_theta 10000, rope_scaling null, attention_bias false, attention_dropout 0,
//     mlp_bias false, tie_word_embeddings false, bos 1, eos 2, pad null.
//   idefics3 vision_config (Idefics3VisionConfig, not SiglipVisionConfig): hidden_size 1152,
//     intermediate_size 3072, num_hidden_layers 12, num_attention_heads 16, num_channels 3,
//     image_size 224, patch_size 32, hidden_act "gelu_pytorch_tanh", layer_norm_eps 1e-6,
//     attention_dropout 0, initializer_range 0.02.
// RoPE: transformers <= 4.5x writes rope_theta + rope_scaling ({rope_type | type, factor, ...});
// transformers 5 writes rope_parameters ({rope_type, rope_theta, ...}). Both are read;
// the first form is written (transformers 5 still reads it).

export type RawConfig = Record<string, unknown>;

/** RoPE frequency scaling (HF rope_scaling); types not listed are rejected with an error. */
export interface RopeScaling {
  ropeType: "default" | "linear" | "llama3" | "yarn";
  /** linear / llama3 / yarn: the scaling factor. */
  factor: number;
  /** llama3 */
  lowFreqFactor?: number;
  /** llama3 */
  highFreqFactor?: number;
  /** llama3: context length of the original model. */
  originalMaxPositionEmbeddings?: number;
  /** yarn: multiplier of cos/sin (default 0.1 ln(factor) + 1). */
  attentionFactor?: number;
  /** yarn (default 32) */
  betaFast?: number;
  /** yarn (default 1) */
  betaSlow?: number;
}

export interface LlamaConfig {
  modelType: "llama";
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  hiddenAct: string;
  maxPositionEmbeddings: number;
  initializerRange: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  attentionBias: boolean;
  attentionDropout: number;
  mlpBias: boolean;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  /** The object this was resolved from (unknown fields are written back on save). */
  raw: RawConfig;
}

export interface VisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numChannels: number;
  imageSize: number;
  patchSize: number;
  hiddenAct: string;
  layerNormEps: number;
  attentionDropout: number;
  initializerRange: number;
  raw: RawConfig;
}


// ---- field readers ------------------------------------------------------------

/** Reads typed fields of a raw config object; errors name the file/section and key. */
export class Reader {
  constructor(
    readonly raw: RawConfig,
    readonly where: string,
  ) {}
  private bad(key: string, want: string): never {
    throw new Error(`${this.where}: field "${key}" must be ${want}, got ${JSON.stringify(this.raw[key])}`);
  }
  /** Present and not null. */
  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }
  /** The first present key of `keys` (aliases), or undefined. */
  first(...keys: string[]): string | undefined {
    return keys.find((k) => this.has(k));
  }
  int(key: string, def: number, min = 1): number {
    const v = this.raw[key] ?? def;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) this.bad(key, `an integer >= ${min}`);
    return v;
  }
  num(key: string, def: number): number {
    const v = this.raw[key] ?? def;
    if (typeof v !== "number" || !Number.isFinite(v)) this.bad(key, "a finite number");
    return v;
  }
  bool(key: string, def: boolean): boolean {
    const v = this.raw[key] ?? def;
    if (typeof v !== "boolean") this.bad(key, "true or false");
    return v;
  }
  str(key: string, def: string): string {
    const v = this.raw[key] ?? def;
    if (typeof v !== "string") this.bad(key, "a string");
    return v;
  }
  tokenId(key: string, def: number | null): number | null {
    const v = this.raw[key] === undefined ? def : this.raw[key];
    if (v === null) return null;
    if (typeof v !== "number" || !Number.isInteger(v)) this.bad(key, "an integer token id or null");
    return v;
  }
  tokenIds(key: string, def: number | number[] | null): number | number[] | null {
    const v = this.raw[key] === undefined ? def : this.raw[key];
    if (v === null || (typeof v === "number" && Number.isInteger(v))) return v as number | null;
    if (Array.isArray(v) && v.every((x) => Number.isInteger(x))) return v as number[];
    this.bad(key, "an integer token id, a list of them, or null");
  }
  /** A list of integers >= min. */
  ints(key: string, def: readonly number[], min = 0): number[] {
    const v = this.raw[key] ?? def;
    if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= min)) this.bad(key, `a list of integers >= ${min}`);
    return [...(v as number[])];
  }
  obj(key: string): RawConfig | null {
    const v = this.raw[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== "object" || Array.isArray(v)) this.bad(key, "an object");
    return v as RawConfig;
  }
}

/** `o` without the given keys. */
export function omitKeys(o: RawConfig, keys: Iterable<string>): RawConfig {
  const drop = new Set(keys);
  return Object.fromEntries(Object.entries(o).filter(([k]) => !drop.has(k)));
}

export function isObject(v: unknown): v is RawConfig {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function resolveRope(r: Reader): { ropeTheta: number; ropeScaling: RopeScaling | null } {
  const params = r.obj("rope_parameters");
  const scalingRaw = r.obj("rope_scaling") ?? params;
  const ropeTheta = params && typeof params.rope_theta === "number" ? params.rope_theta : r.num("rope_theta", 10000);
  if (!scalingRaw) return { ropeTheta, ropeScaling: null };
  const where = `${r.where}: rope_scaling`;
  const type = (scalingRaw.rope_type ?? scalingRaw.type ?? "default") as string;
  const num = (k: string, required: boolean): number | undefined => {
    const v = scalingRaw[k];
    if (v === undefined || v === null) {
      if (required) throw new Error(`${where}: rope_type '${type}' needs "${k}"`);
      return undefined;
    }
    if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`${where}: "${k}" must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  switch (type) {
    case "default":
      return { ropeTheta, ropeScaling: null };
    case "linear":
      return { ropeTheta, ropeScaling: { ropeType: "linear", factor: num("factor", true)! } };
    case "llama3":
      return {
        ropeTheta,
        ropeScaling: {
          ropeType: "llama3",
          factor: num("factor", true)!,
          lowFreqFactor: num("low_freq_factor", true),
          highFreqFactor: num("high_freq_factor", true),
          originalMaxPositionEmbeddings: num("original_max_position_embeddings", true),
        },
      };
    case "yarn":
      return {
        ropeTheta,
        ropeScaling: {
          ropeType: "yarn",
          factor: num("factor", true)!,
          attentionFactor: num("attention_factor", false),
          betaFast: num("beta_fast", false),
          betaSlow: num("beta_slow", false),
          originalMaxPositionEmbeddings: num("original_max_position_embeddings", false),
        },
      };
    default:
      throw new Error(`${where}: rope_type '${type}' is not supported (supported: default, linear, llama3, yarn)`);
  }
}

// ---- resolution -------------------------------------------------------------------

/** Resolves a Llama config (a config.json of model_type "llama", or Idefics3's text_config). */
export function resolveLlamaConfig(raw: RawConfig, where = "config.json", defaults: RawConfig = {}): LlamaConfig {
  const r = new Reader({ ...defaults, ...raw }, where);
  const modelType = r.str("model_type", "llama");
  if (modelType !== "llama") throw new Error(`${where}: model_type '${modelType}' is not supported for a text model (supported: llama)`);
  const hiddenSize = r.int("hidden_size", 4096);
  const numAttentionHeads = r.int("num_attention_heads", 32);
  const numKeyValueHeads = r.int("num_key_value_heads", numAttentionHeads);
  if (!r.has("head_dim") && hiddenSize % numAttentionHeads !== 0) {
    throw new Error(`${where}: hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numAttentionHeads}`);
  }
  const headDim = r.int("head_dim", Math.floor(hiddenSize / numAttentionHeads));
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new Error(`${where}: num_attention_heads ${numAttentionHeads} is not a multiple of num_key_value_heads ${numKeyValueHeads}`);
  }
  if (headDim % 2 !== 0) throw new Error(`${where}: head_dim ${headDim} must be even for rotary embeddings`);
  const pretrainingTp = r.int("pretraining_tp", 1);
  if (pretrainingTp !== 1) throw new Error(`${where}: pretraining_tp ${pretrainingTp} is not supported (only 1)`);
  return {
    modelType: "llama",
    vocabSize: r.int("vocab_size", 32000),
    hiddenSize,
    intermediateSize: r.int("intermediate_size", 11008),
    numHiddenLayers: r.int("num_hidden_layers", 32),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    hiddenAct: r.str("hidden_act", "silu"),
    maxPositionEmbeddings: r.int("max_position_embeddings", 2048),
    initializerRange: r.num("initializer_range", 0.02),
    rmsNormEps: r.num("rms_norm_eps", 1e-6),
    ...resolveRope(r),
    attentionBias: r.bool("attention_bias", false),
    attentionDropout: r.num("attention_dropout", 0),
    mlpBias: r.bool("mlp_bias", false),
    tieWordEmbeddings: r.bool("tie_word_embeddings", false),
    bosTokenId: r.tokenId("bos_token_id", 1),
    eosTokenId: r.tokenIds("eos_token_id", 2),
    padTokenId: r.tokenId("pad_token_id", null),
    raw: { ...raw },
  };
}

/** Resolves Idefics3's vision_config against Idefics3VisionConfig's defaults. */
export function resolveVisionConfig(raw: RawConfig, where = "config.json: vision_config"): VisionConfig {
  const r = new Reader(raw, where);
  const hiddenSize = r.int("hidden_size", 1152);
  const numAttentionHeads = r.int("num_attention_heads", 16);
  if (hiddenSize % numAttentionHeads !== 0) throw new Error(`${where}: hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numAttentionHeads}`);
  const imageSize = r.int("image_size", 224);
  const patchSize = r.int("patch_size", 32);
  // Not a multiple is fine: transformers floors the patch count (the patch conv drops a partial patch), e.g. SmolVLM-Instruct's 384 / 14.
  if (imageSize < patchSize) throw new Error(`${where}: image_size ${imageSize} is smaller than patch_size ${patchSize} (no whole patch)`);
  return {
    hiddenSize,
    intermediateSize: r.int("intermediate_size", 3072),
    numHiddenLayers: r.int("num_hidden_layers", 12),
    numAttentionHeads,
    numChannels: r.int("num_channels", 3),
    imageSize,
    patchSize,
    hiddenAct: r.str("hidden_act", "gelu_pytorch_tanh"),
    layerNormEps: r.num("layer_norm_eps", 1e-6),
    attentionDropout: r.num("attention_dropout", 0),
    initializerRange: r.num("initializer_range", 0.02),
    raw: { ...raw },
  };
}

// ---- writing ---------------------------------------------------------------------

/** Version recorded in written configs when the source config names none. */
export const WRITTEN_TRANSFORMERS_VERSION = "4.46.0";

export function ropeJson(c: LlamaConfig): RawConfig {
  const s = c.ropeScaling;
  if (!s) return { rope_theta: c.ropeTheta, rope_scaling: null };
  const o: RawConfig = { rope_type: s.ropeType, factor: s.factor };
  if (s.lowFreqFactor !== undefined) o.low_freq_factor = s.lowFreqFactor;
  if (s.highFreqFactor !== undefined) o.high_freq_factor = s.highFreqFactor;
  if (s.originalMaxPositionEmbeddings !== undefined) o.original_max_position_embeddings = s.originalMaxPositionEmbeddings;
  if (s.attentionFactor !== undefined) o.attention_factor = s.attentionFactor;
  if (s.betaFast !== undefined) o.beta_fast = s.betaFast;
  if (s.betaSlow !== undefined) o.beta_slow = s.betaSlow;
  return { rope_theta: c.ropeTheta, rope_scaling: o };
}

/** A Llama config as HF's LlamaConfig.to_dict() writes it (raw extras kept, resolved fields win). */
export function llamaConfigToJson(c: LlamaConfig, opts: { topLevel?: boolean; torchDtype?: string } = {}): RawConfig {
  const { rope_parameters: _drop, ...rawRest } = c.raw;
  const out: RawConfig = {
    ...rawRest,
    ...(opts.topLevel ? { architectures: ["LlamaForCausalLM"] } : {}),
    model_type: "llama",
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    num_key_value_heads: c.numKeyValueHeads,
    head_dim: c.headDim,
    hidden_act: c.hiddenAct,
    max_position_embeddings: c.maxPositionEmbeddings,
    initializer_range: c.initializerRange,
    rms_norm_eps: c.rmsNormEps,
    ...ropeJson(c),
    attention_bias: c.attentionBias,
    attention_dropout: c.attentionDropout,
    mlp_bias: c.mlpBias,
    pretraining_tp: 1,
    tie_word_embeddings: c.tieWordEmbeddings,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    pad_token_id: c.padTokenId,
    use_cache: c.raw.use_cache ?? true,
  };
  if (opts.topLevel) {
    if (opts.torchDtype) out.torch_dtype = opts.torchDtype;
    out.transformers_version = c.raw.transformers_version ?? WRITTEN_TRANSFORMERS_VERSION;
  }
  return sortKeys(out);
}

export function visionConfigToJson(c: VisionConfig): RawConfig {
  return sortKeys({
    ...c.raw,
    model_type: c.raw.model_type ?? "idefics3_vision",
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    num_channels: c.numChannels,
    image_size: c.imageSize,
    patch_size: c.patchSize,
    hidden_act: c.hiddenAct,
    layer_norm_eps: c.layerNormEps,
    attention_dropout: c.attentionDropout,
    initializer_range: c.initializerRange,
  });
}

/** Keys sorted (transformers writes config.json with sort_keys=True). */
export function sortKeys(o: RawConfig): RawConfig {
  return Object.fromEntries(Object.keys(o)
    .sort()
    .map((k) => [k, o[k]]));
}

