// Qwen2-VL / Qwen2.5-VL size presets as the config.json objects transformers
// 5.18 writes (nested layout), so a preset goes through the same resolution
// as a downloaded model:
//   tiny           fast tests and the CPU demo: text 64 hidden, 2 layers, 4 heads / 2 kv
//                  (head dim 16, mrope_section [4, 2, 2]); vision 32 wide, 2 blocks, 2 heads,
//                  14 px patches; Qwen2.5-VL's window is 56 px (2 x 2 merged tokens) with
//                  block 1 attending over the whole image. Images limited to 16 merged tokens.
//                  About 0.3M parameters with the built tokenizer's ~1.3k ids.
//   qwen2-vl-2b    Qwen/Qwen2-VL-2B-Instruct's shapes: text 1536 hidden, 28 layers, 12 heads /
//                  2 kv, 8960 MLP, vocab 151936, tied; vision 1280 wide, 32 blocks, 16 heads
//                  (2.21B parameters).
//   qwen2.5-vl-3b  Qwen/Qwen2.5-VL-3B-Instruct's shapes: text 2048 hidden, 36 layers, 16 heads /
//                  2 kv, 11008 MLP, vocab 151936, tied; vision 1280 wide, 32 blocks, 3420 MLP,
//                  112 px windows, full attention at blocks 7, 15, 23, 31 (3.75B parameters).
// The presets of full size keep the hub's image limits (min_pixels 3136, max_pixels 12845056).
import { type QwenFamily, type QwenVLConfig, type RawConfig, resolveQwenConfig } from "./config.js";

export type QwenPresetName = "tiny" | "qwen2-vl-2b" | "qwen2.5-vl-3b";
export const QWEN_PRESET_NAMES: readonly QwenPresetName[] = ["tiny", "qwen2-vl-2b", "qwen2.5-vl-3b"];

/** Token ids a preset config needs (from the tokenizer written beside it). */
export interface QwenPresetTokens {
  /** Ids in the tokenizer; the model's vocab_size is the preset's, or this when the preset names none. */
  vocabSize: number;
  eosTokenId: number;
  padTokenId: number;
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  visionEndTokenId: number;
}

/** Image processor limits a preset writes into preprocessor_config.json. */
export interface QwenPresetImageLimits {
  minPixels: number;
  maxPixels: number;
}

interface Shapes {
  /** Which family a full-size preset is (tiny works for both). */
  family?: QwenFamily;
  vocabSize?: number;
  tie: boolean;
  text: RawConfig;
  vision: Record<QwenFamily, RawConfig>;
  images: QwenPresetImageLimits;
}

const HUB_IMAGES: QwenPresetImageLimits = { minPixels: 3136, maxPixels: 12845056 };

const SHAPES: Record<QwenPresetName, Shapes> = {
  tiny: {
    tie: false,
    text: { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 4096, rms_norm_eps: 1e-6, rope_parameters: { rope_type: "default", rope_theta: 10000, mrope_section: [4, 2, 2] } },
    vision: {
      qwen2_vl: { depth: 2, embed_dim: 32, hidden_size: 64, num_heads: 2, mlp_ratio: 2, hidden_act: "quick_gelu" },
      qwen2_5_vl: { depth: 2, hidden_size: 32, out_hidden_size: 64, intermediate_size: 64, num_heads: 2, hidden_act: "silu", window_size: 56, fullatt_block_indexes: [1], tokens_per_second: 2 },
    },
    images: { minPixels: 56 * 56, maxPixels: 28 * 28 * 16 },
  },
  "qwen2-vl-2b": {
    family: "qwen2_vl",
    vocabSize: 151936,
    tie: true,
    text: { hidden_size: 1536, intermediate_size: 8960, num_hidden_layers: 28, num_attention_heads: 12, num_key_value_heads: 2, max_position_embeddings: 32768, max_window_layers: 28, rms_norm_eps: 1e-6, rope_parameters: { rope_type: "default", rope_theta: 1000000, mrope_section: [16, 24, 24] } },
    vision: {
      qwen2_vl: { depth: 32, embed_dim: 1280, hidden_size: 1536, num_heads: 16, mlp_ratio: 4, hidden_act: "quick_gelu" },
      qwen2_5_vl: {},
    },
    images: HUB_IMAGES,
  },
  "qwen2.5-vl-3b": {
    family: "qwen2_5_vl",
    vocabSize: 151936,
    tie: true,
    text: { hidden_size: 2048, intermediate_size: 11008, num_hidden_layers: 36, num_attention_heads: 16, num_key_value_heads: 2, max_position_embeddings: 128000, max_window_layers: 70, rms_norm_eps: 1e-6, rope_parameters: { rope_type: "default", rope_theta: 1000000, mrope_section: [16, 24, 24] } },
    vision: {
      qwen2_vl: {},
      qwen2_5_vl: { depth: 32, hidden_size: 1280, out_hidden_size: 2048, intermediate_size: 3420, num_heads: 16, hidden_act: "silu", window_size: 112, fullatt_block_indexes: [7, 15, 23, 31], tokens_per_second: 2 },
    },
    images: HUB_IMAGES,
  },
};

/** The presets of one family (tiny is both's). */
export function qwenPresetsOf(family: QwenFamily): QwenPresetName[] {
  return QWEN_PRESET_NAMES.filter((n) => !SHAPES[n].family || SHAPES[n].family === family);
}

function checkPreset(family: QwenFamily, preset: string): Shapes {
  const s = SHAPES[preset as QwenPresetName];
  if (!s) throw new Error(`unknown Qwen preset '${preset}'; choose one of: ${QWEN_PRESET_NAMES.join(", ")}`);
  if (s.family && s.family !== family) {
    const fits = QWEN_PRESET_NAMES.filter((n) => !SHAPES[n].family || SHAPES[n].family === family);
    throw new Error(`preset '${preset}' is a ${s.family} model, not ${family}; presets for ${family}: ${fits.join(", ")}`);
  }
  return s;
}

/** The preset's image limits (preprocessor_config.json's min_pixels / max_pixels). */
export function qwenPresetImageLimits(family: QwenFamily, preset: QwenPresetName): QwenPresetImageLimits {
  return { ...checkPreset(family, preset).images };
}

/** The preset's config.json object (nested layout). */
export function qwenPresetRawConfig(family: QwenFamily, preset: QwenPresetName, tokens: QwenPresetTokens): RawConfig {
  const s = checkPreset(family, preset);
  const vocab = s.vocabSize ?? tokens.vocabSize;
  if (tokens.vocabSize > vocab) throw new Error(`preset ${preset}: the tokenizer has ${tokens.vocabSize} ids but the model's vocab_size is ${vocab}`);
  return {
    architectures: [family === "qwen2_vl" ? "Qwen2VLForConditionalGeneration" : "Qwen2_5_VLForConditionalGeneration"],
    model_type: family,
    image_token_id: tokens.imageTokenId,
    video_token_id: tokens.videoTokenId,
    vision_start_token_id: tokens.visionStartTokenId,
    vision_end_token_id: tokens.visionEndTokenId,
    tie_word_embeddings: s.tie,
    text_config: {
      model_type: `${family}_text`,
      ...s.text,
      vocab_size: vocab,
      hidden_act: "silu",
      initializer_range: 0.02,
      attention_dropout: 0,
      use_sliding_window: false,
      bos_token_id: null,
      eos_token_id: tokens.eosTokenId,
      pad_token_id: tokens.padTokenId,
    },
    vision_config: {
      model_type: `${family}_vision`,
      ...s.vision[family],
      in_channels: 3,
      patch_size: 14,
      spatial_merge_size: 2,
      temporal_patch_size: 2,
      initializer_range: 0.02,
    },
  };
}

/** The preset's resolved config. */
export function qwenPresetConfig(family: QwenFamily, preset: QwenPresetName, tokens: QwenPresetTokens): QwenVLConfig {
  return resolveQwenConfig(qwenPresetRawConfig(family, preset, tokens), `preset ${preset} (${family})`);
}
