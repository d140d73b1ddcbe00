// The Qwen2-VL and Qwen2.5-VL families (model_type "qwen2_vl", "qwen2_5_vl"):
// one folder, two registry entries that differ only in their name. Registered
// in ../registry.ts.
import type { ModelFamily } from "../registry.js";
import { qwenKeyToModulePath, qwenModulePathToKey } from "./checkpoint.js";
import { type QwenFamily, qwenConfigToJson, qwenGenerationConfigJson, type QwenVLConfig, resolveQwenConfig } from "./config.js";
import { readQwenImageProcessorConfig } from "./image_processor.js";
import { initQwenPreset, initQwenWeights } from "./init.js";
import { QwenVLForConditionalGeneration } from "./model.js";
import { type QwenPresetName, qwenPresetsOf } from "./presets.js";
import { QwenPromptImages } from "./prompt_images.js";

function qwenFamily(name: QwenFamily): ModelFamily<QwenVLConfig> {
  const two = name === "qwen2_5_vl";
  return {
    name,
    modelTypes: [name],
    architectures: [two ? "Qwen2_5_VLForConditionalGeneration" : "Qwen2VLForConditionalGeneration"],
    description: two
      ? "Qwen2.5-VL: windowed ViT (RMSNorm, gated MLP), 2x2 patch merger, Qwen2 decoder with M-RoPE"
      : "Qwen2-VL: ViT with 2-D RoPE, 2x2 patch merger, Qwen2 decoder with M-RoPE",
    vision: true,
    resolveConfig: (raw, where) => {
      const c = resolveQwenConfig(raw, where);
      if (c.modelType !== name) throw new Error(`${where}: a ${c.modelType} config read as ${name}`);
      return c;
    },
    configToJson: (c, opts) => qwenConfigToJson(c, { dtype: opts.torchDtype }),
    generationConfig: qwenGenerationConfigJson,
    // Files use the hub layout (visual.*, model.*), which transformers 5.18 also writes; both layouts load.
    checkpointKeys: { toModulePath: qwenKeyToModulePath, toStoredKey: qwenModulePathToKey },
    build: (c, placement) => new QwenVLForConditionalGeneration(c, placement),
    loadImageProcessor: async (dir, tokenizer) => new QwenPromptImages(readQwenImageProcessorConfig(dir), (t) => tokenizer.tokenToId(t)),
    presets: qwenPresetsOf(name),
    initPreset: (preset, dir, opts) => initQwenPreset(name, preset as QwenPresetName, dir, opts),
    initWeights: (model, _c, seed, opts) => initQwenWeights(model as QwenVLForConditionalGeneration, { seed, visionInit: opts.visionInit }),
  };
}

export const qwen2VlFamily = qwenFamily("qwen2_vl");
export const qwen25VlFamily = qwenFamily("qwen2_5_vl");
