// Text-only Llama decoders (model_type "llama", LlamaForCausalLM): loadable,
// savable and initializable like the vision families, for tests and for the
// decoder halves of VLMs; vlm-grpo's trainers refuse them (vision: false).
import { writeTokenizerFiles } from "../io/tokenizer_builder.js";
import { type LlamaConfig, llamaConfigToJson, resolveLlamaConfig, WRITTEN_TRANSFORMERS_VERSION } from "./configs.js";
import { IDEFICS3_PRESETS, type Idefics3PresetName, presetConfig, presetFiles } from "./idefics3/presets.js";
import { initWeights } from "./init_weights.js";
import { LlamaForCausalLM } from "./llama.js";
import { generationConfigFromTokens, type ModelFamily } from "./registry.js";

export const llamaFamily: ModelFamily<LlamaConfig> = {
  name: "llama",
  modelTypes: ["llama"],
  architectures: ["LlamaForCausalLM"],
  description: "text-only Llama decoder (e.g. SmolLM2); presets are the SmolVLM presets' decoders",
  vision: false,
  resolveConfig: (raw, where) => resolveLlamaConfig(raw, where),
  configToJson: (c, opts) => llamaConfigToJson(c, { ...opts, topLevel: true }),
  generationConfig: (c) => generationConfigFromTokens(({ bos: c.bosTokenId, eos: c.eosTokenId, pad: c.padTokenId }), WRITTEN_TRANSFORMERS_VERSION),
  build: (c, placement) => new LlamaForCausalLM(c, placement),
  presets: IDEFICS3_PRESETS,
  async initPreset(preset, dir, opts) {
    const files = presetFiles(preset as Idefics3PresetName);
    const tok = await writeTokenizerFiles(dir, files.padVocabTo !== undefined ? { vocabSize: files.padVocabTo } : {});
    const config = presetConfig("llama", preset as Idefics3PresetName, tok) as LlamaConfig;
    if (opts.initializerRange !== undefined) config.initializerRange = opts.initializerRange;
    return config;
  },
  initWeights: (model, c, seed) => initWeights(model, c.initializerRange, seed),
};
