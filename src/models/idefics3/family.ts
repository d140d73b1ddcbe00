// The Idefics3 (SmolVLM) family: SigLIP vision tower -> pixel-shuffle
// connector -> Llama decoder. Registered in ../registry.ts.
import { writeTokenizerFiles } from "../../io/tokenizer_builder.js";
import { initWeights } from "../init_weights.js";
import { generationConfigFromTokens, type ModelFamily } from "../registry.js";
import { WRITTEN_TRANSFORMERS_VERSION } from "../configs.js";
import { type Idefics3Config, idefics3ConfigToJson, resolveIdefics3Config } from "./config.js";
import { readProcessorConfig, writeProcessorFiles } from "./image_processor_config.js";
import { Idefics3ForConditionalGeneration } from "./model.js";
import { IDEFICS3_PRESETS, type Idefics3PresetName, presetConfig, presetFiles } from "./presets.js";
import { Idefics3PromptImages } from "./prompt_images.js";

export const idefics3Family: ModelFamily<Idefics3Config> = {
  name: "idefics3",
  modelTypes: ["idefics3"],
  architectures: ["Idefics3ForConditionalGeneration"],
  description: "SmolVLM / Idefics3: SigLIP vision tower, pixel-shuffle connector, Llama decoder",
  vision: true,
  resolveConfig: resolveIdefics3Config,
  configToJson: idefics3ConfigToJson,
  generationConfig: (c) => generationConfigFromTokens(({ bos: c.text.bosTokenId, eos: c.text.eosTokenId, pad: c.text.padTokenId ?? c.padTokenId }), WRITTEN_TRANSFORMERS_VERSION),
  build: (c, placement) => new Idefics3ForConditionalGeneration(c, placement),
  loadImageProcessor: async (dir, tokenizer, c) => new Idefics3PromptImages(readProcessorConfig(dir), (t) => tokenizer.tokenToId(t), c.imageSeqLen),
  presets: IDEFICS3_PRESETS,
  async initPreset(preset, dir, opts) {
    const files = presetFiles(preset as Idefics3PresetName);
    const tok = await writeTokenizerFiles(dir, files.padVocabTo !== undefined ? { vocabSize: files.padVocabTo } : {});
    const imageTokenId = tok.specialTokenIds["<image>"];
    if (imageTokenId === undefined) throw new Error("init-model: the tokenizer writer returned no id for '<image>'");
    const config = presetConfig("idefics3", preset as Idefics3PresetName, { ...tok, imageTokenId }) as Idefics3Config;
    if (opts.initializerRange !== undefined) config.text.initializerRange = opts.initializerRange;
    await writeProcessorFiles(dir, {
      imageSize: config.vision.imageSize,
      imageSeqLen: config.imageSeqLen,
      doImageSplitting: files.doImageSplitting,
      ...(files.longestEdge !== undefined ? { longestEdge: files.longestEdge } : {}),
    });
    return config;
  },
  // Idefics3 uses text_config.initializer_range for every part, vision included.
  initWeights: (model, c, seed, opts) => initWeights(model, c.text.initializerRange, seed, { vision: opts.visionInit, visionPrefixes: ["model.vision_model"] }),
};
