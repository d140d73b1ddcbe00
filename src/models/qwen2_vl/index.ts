// Qwen2-VL and Qwen2.5-VL (model_type "qwen2_vl", "qwen2_5_vl"): config, model, checkpoint I/O, image processor, processor.
export * from "./config.js";
export * from "./model.js";
export * from "./checkpoint.js";
export * from "./positions.js";
export * from "./image_processor.js";
export * from "./processor.js";
export { MultimodalRotaryEmbedding, VisionRotaryEmbedding } from "./rotary.js";
export { QwenVisionTransformer } from "./vision.js";
export { buildQwenDecoder, qwenTextAsLlama } from "./text.js";
export * from "./presets.js";
export * from "./init.js";
export * from "./tokenizer_files.js";
