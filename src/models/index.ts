// Model families, the interface everything above sees (vlm.ts), the registry,
// HF checkpoint folders, PEFT adapters and init-model.
export * from "./configs.js";
export * from "./vlm.js";
export { expandImageMarkers, type ProcessedImages, type VlmImageProcessor } from "./processor.js";
export {
  configToJson,
  familyByName,
  type FamilyInitOptions,
  familyOf,
  familyOfRaw,
  type GenerationTokens,
  type InitPresetOptions,
  type ModelFamily,
  modelFamilies,
  resolveConfig,
} from "./registry.js";
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
export { bucketPositionIds, SiglipAttention, SiglipEncoder, SiglipEncoderLayer, SiglipVisionEmbeddings, SiglipVisionTransformer } from "./siglip.js";
export { type Idefics3Config, idefics3ConfigToJson, resolveIdefics3Config } from "./idefics3/config.js";
export { Idefics3Connector, Idefics3SimpleMLP, pixelShuffle } from "./idefics3/connector.js";
export { Idefics3ForConditionalGeneration, type Idefics3Inputs, Idefics3Model } from "./idefics3/model.js";
export { IDEFICS3_PRESETS, type Idefics3PresetName, presetConfig, presetFiles, type PresetFiles, presetRawConfig, type PresetTokens } from "./idefics3/presets.js";
export { initWeights, type InitWeightsOptions } from "./init_weights.js";
export {
  buildModel,
  checkpointParameters,
  COPIED_FILE_NAMES,
  generationConfigJson,
  loadPretrained,
  type LoadPretrainedOptions,
  loadWeights,
  parseSize,
  readConfig,
  savePretrained,
  type SavePretrainedOptions,
} from "./load.js";
export { initModel, type InitModelOptions, type InitModelResult } from "./init_model.js";
export { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadAdapter, readAdapterConfig, saveAdapter, type SaveAdapterOptions, targetModulesRegex } from "./peft.js";

/** Any resolved config (a family's own type; narrow with modelType). */
export type ModelConfig = import("./vlm.js").FamilyConfig;
