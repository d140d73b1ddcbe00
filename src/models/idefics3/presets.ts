// Model size presets, written as the config.json objects Hugging Face would
// hold, so that a preset goes through the same resolution as a downloaded model.
//   tiny          fast tests: vision 32 hidden, 2 layers, 32 px images of 8 px patches,
//                 scale 2 (4 tokens per image); text 64 hidden, 2 layers, 4 heads / 2 kv.
//   small         CPU demo (~3M parameters with a small vocabulary): vision 96 hidden,
//                 3 layers, 64 px images, 16 tokens per image; text 192 hidden, 4 layers.
//   demo          `vlm-grpo demo`'s model: tiny's widths, but 120 px images of 6 px patches
//                 (a 20x20 grid), scale factor 5 -> 16 tokens per image. The demo's hard
//                 objects cover ~10 patches at this grid and under one at tiny's 32 px
//                 (BENCHMARKS.md, "What makes the demo model see").
//   smolvlm-256m  HuggingFaceTB/SmolVLM-256M-Instruct's shapes (SigLIP-B/16 at 512 px,
//                 scale 4 -> 64 tokens per image; SmolLM2-135M decoder: 576 hidden,
//                 30 layers, 9 heads / 3 kv, 1536 MLP, vocab 49280, rope_theta 100000).
//   smolvlm-500m  HuggingFaceTB/SmolVLM-500M-Instruct's shapes (same vision tower;
//                 SmolLM2-360M decoder: 960 hidden, 32 layers, 15 heads / 5 kv, 2560 MLP).
// For arch "llama" a preset is its text model alone. Idefics3 presets keep lm_head
// separate (tie_word_embeddings false, as SmolVLM); Llama presets tie it (as SmolLM2).
import { type LlamaConfig, type RawConfig, resolveLlamaConfig } from "../configs.js";
import { type Idefics3Config, resolveIdefics3Config } from "./config.js";

/** "idefics3" for the whole VLM, "llama" for its decoder alone (the text-only family's presets). */
export type PresetArch = "idefics3" | "llama";
export type Idefics3PresetName = "tiny" | "small" | "demo" | "smolvlm-256m" | "smolvlm-500m";
export const IDEFICS3_PRESETS: readonly Idefics3PresetName[] = ["tiny", "small", "demo", "smolvlm-256m", "smolvlm-500m"];

/** Token ids a preset config needs (from the tokenizer written beside it). */
export interface PresetTokens {
  vocabSize: number;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId: number;
  /** Id of "<image>" (idefics3). */
  imageTokenId?: number;
}

/** What a preset asks of the tokenizer and image processor files. */
export interface PresetFiles {
  /** Pad the tokenizer's vocabulary to this size (undefined: as small as it comes). */
  padVocabTo?: number;
  /** Split large images into image_size tiles plus a global image. */
  doImageSplitting: boolean;
  /** Resize so the longest edge is this before splitting (processor "size.longest_edge"). */
  longestEdge?: number;
}

interface PresetShapes {
  files: PresetFiles;
  vision: RawConfig;
  scaleFactor: number;
  text: RawConfig;
}

const SHAPES: Record<Idefics3PresetName, PresetShapes> = {
  tiny: {
    files: { doImageSplitting: false, longestEdge: 32 },
    vision: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, image_size: 32, patch_size: 8 },
    scaleFactor: 2,
    text: { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 2048, rope_theta: 10000 },
  },
  small: {
    files: { doImageSplitting: false, longestEdge: 64 },
    vision: { hidden_size: 96, intermediate_size: 384, num_hidden_layers: 3, num_attention_heads: 3, image_size: 64, patch_size: 8 },
    scaleFactor: 2,
    text: { hidden_size: 192, intermediate_size: 512, num_hidden_layers: 4, num_attention_heads: 6, num_key_value_heads: 2, max_position_embeddings: 4096, rope_theta: 10000 },
  },
  demo: {
    files: { doImageSplitting: false, longestEdge: 120 },
    vision: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, image_size: 120, patch_size: 6 },
    scaleFactor: 5,
    text: { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 2048, rope_theta: 10000 },
  },
  "smolvlm-256m": {
    files: { padVocabTo: 49280, doImageSplitting: true, longestEdge: 2048 },
    vision: { hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, image_size: 512, patch_size: 16 },
    scaleFactor: 4,
    text: { hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, head_dim: 64, max_position_embeddings: 8192, rope_theta: 100000 },
  },
  "smolvlm-500m": {
    files: { padVocabTo: 49280, doImageSplitting: true, longestEdge: 2048 },
    vision: { hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, image_size: 512, patch_size: 16 },
    scaleFactor: 4,
    text: { hidden_size: 960, intermediate_size: 2560, num_hidden_layers: 32, num_attention_heads: 15, num_key_value_heads: 5, head_dim: 64, max_position_embeddings: 8192, rope_theta: 100000 },
  },
};

function checkPreset(preset: string): PresetShapes {
  const s = SHAPES[preset as Idefics3PresetName];
  if (!s) throw new Error(`unknown model preset '${preset}'; choose one of: ${IDEFICS3_PRESETS.join(", ")}`);
  return s;
}

/** What the preset needs from the tokenizer and processor files. */
export function presetFiles(preset: Idefics3PresetName): PresetFiles {
  return { ...checkPreset(preset).files };
}

/** The preset's config.json object. */
export function presetRawConfig(arch: PresetArch, preset: Idefics3PresetName, tokens: PresetTokens): RawConfig {
  const s = checkPreset(preset);
  const text: RawConfig = {
    model_type: "llama",
    ...s.text,
    vocab_size: tokens.vocabSize,
    hidden_act: "silu",
    rms_norm_eps: 1e-5,
    initializer_range: 0.02,
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: tokens.bosTokenId,
    eos_token_id: tokens.eosTokenId,
    pad_token_id: tokens.padTokenId,
    tie_word_embeddings: arch === "llama",
  };
  if (arch === "llama") return { architectures: ["LlamaForCausalLM"], ...text };
  if (arch !== "idefics3") throw new Error(`unknown architecture '${arch as string}'; choose idefics3 or llama`);
  if (tokens.imageTokenId === undefined) throw new Error(`preset ${preset}: an idefics3 model needs the tokenizer's <image> token id`);
  return {
    architectures: ["Idefics3ForConditionalGeneration"],
    model_type: "idefics3",
    image_token_id: tokens.imageTokenId,
    scale_factor: s.scaleFactor,
    tie_word_embeddings: false,
    pad_token_id: tokens.padTokenId,
    vocab_size: tokens.vocabSize,
    text_config: text,
    vision_config: {
      model_type: "idefics3_vision",
      ...s.vision,
      num_channels: 3,
      hidden_act: "gelu_pytorch_tanh",
      layer_norm_eps: 1e-6,
      attention_dropout: 0,
      initializer_range: 0.02,
    },
  };
}

/** The preset's resolved config. */
export function presetConfig(arch: PresetArch, preset: Idefics3PresetName, tokens: PresetTokens): Idefics3Config | LlamaConfig {
  const raw = presetRawConfig(arch, preset, tokens);
  const where = `preset ${preset} (${arch})`;
  return arch === "idefics3" ? resolveIdefics3Config(raw, where) : resolveLlamaConfig(raw, where);
}
