// Neural-network building blocks over the tensor engine.
export { Module, ModuleList, describeKeyMismatch, type LoadStateDictOptions, type LoadStateDictResult, type StateDictInput } from "./module.js";
export { Linear, type LinearOptions } from "./linear.js";
export { Embedding, type EmbeddingOptions } from "./embedding.js";
export { Conv2d, type Conv2dOptions } from "./conv.js";
export { LayerNorm, RMSNorm, type NormOptions } from "./norms.js";
export { activation, ACTIVATION_NAMES, type Activation } from "./activations.js";
export { KVCache, type KVCacheOptions } from "./kv_cache.js";
export { attend, decoderMask, repeatKv, type AttendOptions, type DecoderMask } from "./attention.js";
