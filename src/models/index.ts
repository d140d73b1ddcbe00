// Model architectures, configs, checkpoint folders and presets.
export * from "./configs.js";
export { applyRotary, RotaryEmbedding, ropeInvFreq, rotateHalf, type RopeParams } from "./rope.js";
export {
  type CausalLMInputs,
  type CausalLMOutput,
  defaultPositionIds,
  type DecoderInputs,
  LlamaAttention,
  LlamaDecoderLayer,
  LlamaForCausalLM,
  LlamaMLP,
  LlamaModel,
  lmLogits,
  type ModelPlacement,
} from "./llama.js";
export { bucketPositionIds, SiglipAttention, SiglipEncoder, SiglipEncoderLayer, SiglipMLP, SiglipVisionEmbeddings, SiglipVisionTransformer } from "./siglip.js";
export { Idefics3Connector, Idefics3SimpleMLP, pixelShuffle } from "./idefics3_connector.js";
export { Idefics3ForConditionalGeneration, type Idefics3Inputs, Idefics3Model } from "./idefics3.js";
export { initWeights } from "./init_weights.js";
export {
  buildModel,
  checkpointParameters,
  COPIED_FILE_NAMES,
  generationConfigJson,
  loadPretrained,
  type LoadPretrainedOptions,
  loadWeights,
  parseSize,
  type PretrainedModel,
  readConfig,
  savePretrained,
  type SavePretrainedOptions,
} from "./load.js";
export { type Arch, PRESET_NAMES, presetConfig, presetFiles, type PresetFiles, type PresetName, presetRawConfig, type PresetTokens } from "./presets.js";
export { initModel, type InitModelOptions, type InitModelResult, type InitModelWriters, type TokenizerWriteResult } from "./init_model.js";
