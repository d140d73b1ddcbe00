// The model folder both sides of a peer benchmark load: a family's preset
// (init-model's files: weights, config.json, tokenizer, processor files),
// random weights, optionally with fewer decoder layers / vision blocks than
// the preset (the layer widths stay the preset's). Written once by ours,
// loaded by ours (loadPretrained) and by transformers (from_pretrained), so
// both run the same weights.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadSafetensors } from "../src/io/safetensors.js";
import { configToJson, familyByName, type FamilyConfig, type ImageInputs, type RawConfig, resolveConfig, savePretrained } from "../src/models/index.js";
import type { Tensor } from "../src/torch/index.js";

export interface BenchModelSpec {
  /** A registered family (--arch): "idefics3", "qwen2_5_vl", ... */
  arch: string;
  preset: string;
  /** Decoder layers (default: the preset's). */
  textLayers?: number;
  /** Vision blocks (default: the preset's). */
  visionLayers?: number;
  seed?: number;
}

export interface BenchModel {
  dir: string;
  config: FamilyConfig;
  /** The preset's own layer counts, for the report. */
  presetTextLayers: number;
  presetVisionLayers: number;
  numParameters: number;
}

/** The vision block count field of each family's vision_config. */
function visionDepthKey(raw: RawConfig): "depth" | "num_hidden_layers" {
  return "depth" in raw ? "depth" : "num_hidden_layers";
}

/**
 * Qwen2.5-VL's full-attention blocks when the tower is cut to `depth` blocks:
 * the preset's indexes below depth; if none is left, the last block (so at
 * least one block attends over the whole image, as in every real checkpoint).
 */
function cutFullAttention(indexes: unknown, depth: number): number[] | undefined {
  if (!Array.isArray(indexes)) return undefined;
  const kept = (indexes as number[]).filter((i) => i < depth);
  return kept.length ? kept : [depth - 1];
}

/** Writes the benchmark model folder into a new temporary folder. */
export async function writeBenchModel(spec: BenchModelSpec): Promise<BenchModel> {
  const family = familyByName(spec.arch);
  if (!family.presets.includes(spec.preset)) throw new Error(`bench: unknown ${family.name} preset '${spec.preset}'; choose one of: ${family.presets.join(", ")}`);
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-grpo-bench-stage-"));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vlm-grpo-bench-${spec.arch}-`));
  try {
    const presetConfig = await family.initPreset(spec.preset, staging, {});
    const raw = JSON.parse(JSON.stringify(configToJson(presetConfig))) as RawConfig;
    const text = raw.text_config as RawConfig;
    const vision = raw.vision_config as RawConfig;
    const vKey = visionDepthKey(vision);
    const presetTextLayers = text.num_hidden_layers as number;
    const presetVisionLayers = vision[vKey] as number;
    for (const [flag, n] of [["textLayers", spec.textLayers], ["visionLayers", spec.visionLayers]] as const) {
      if (n !== undefined && !(Number.isInteger(n) && n >= 1)) throw new Error(`bench: ${flag} must be a positive integer, got ${n}`);
    }
    if (spec.textLayers !== undefined) {
      text.num_hidden_layers = spec.textLayers;
      if (typeof text.max_window_layers === "number") text.max_window_layers = Math.min(text.max_window_layers, spec.textLayers);
      if (Array.isArray(text.layer_types)) text.layer_types = (text.layer_types as unknown[]).slice(0, spec.textLayers);
    }
    if (spec.visionLayers !== undefined) {
      vision[vKey] = spec.visionLayers;
      const full = cutFullAttention(vision.fullatt_block_indexes, spec.visionLayers);
      if (full) vision.fullatt_block_indexes = full;
    }
    const config = resolveConfig(raw, `bench model ${spec.arch}/${spec.preset}`);
    const model = family.build(config, { dtype: "float32" });
    try {
      family.initWeights(model, config, spec.seed ?? 0, {});
      const files = fs.readdirSync(staging, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
      await savePretrained(model, dir, { dtype: "float32", copyFilesFrom: staging, copyFileNames: files });
      return { dir, config, presetTextLayers, presetVisionLayers, numParameters: model.numParameters() };
    } finally {
      model.dispose();
    }
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/** The prompt and image tensors the peer's processor wrote to `work`/inputs.safetensors, in our ImageInputs layout (dispose `tensors` when done). */
export function readPeerInputs(work: string): { tensors: Map<string, Tensor>; inputIds: Tensor; attentionMask: Tensor; image: ImageInputs } {
  const tensors = loadSafetensors(path.join(work, "inputs.safetensors"));
  const image: ImageInputs = { pixelValues: tensors.get("pixel_values")! };
  if (tensors.has("pixel_attention_mask")) image.pixelAttentionMask = tensors.get("pixel_attention_mask")!;
  if (tensors.has("image_grid_thw")) image.imageGridThw = tensors.get("image_grid_thw")!;
  return { tensors, inputIds: tensors.get("input_ids")!, attentionMask: tensors.get("attention_mask")!, image };
}

/** The note a bench prints when the model is cut to fewer layers than its preset ("" when it is whole). */
export function cutNote(bm: BenchModel, textLayers?: number, visionLayers?: number): string {
  return textLayers || visionLayers
    ? ` (CUT: ${textLayers ?? bm.presetTextLayers} of the preset's ${bm.presetTextLayers} decoder layers, ${visionLayers ?? bm.presetVisionLayers} of its ${bm.presetVisionLayers} vision blocks; layer widths as the preset)`
    : "";
}

/** The fields that describe the benchmarked model in a bench's --json line (same names in every bench). */
export function benchModelFields(
  bm: BenchModel,
  m: { name: string; arch: string; preset: string; textLayers?: number; visionLayers?: number; loraRank: number },
): { model: string; arch: string; preset: string; text_layers: number; vision_layers: number; parameters: number; lora_rank: number } {
  return {
    model: m.name,
    arch: m.arch,
    preset: m.preset,
    text_layers: m.textLayers ?? bm.presetTextLayers,
    vision_layers: m.visionLayers ?? bm.presetVisionLayers,
    parameters: bm.numParameters,
    lora_rank: m.loraRank,
  };
}
