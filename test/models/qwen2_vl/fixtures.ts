// The reference fixtures of scripts/fixtures/make_qwen_fixtures.py (real
// transformers 5.18): reference.json, the per-family logits, the processor's
// pixel values, the tiny checkpoints.
import fs from "node:fs";
import path from "node:path";

import { loadSafetensors } from "../../../src/io/safetensors.js";
import type { ImageInputs } from "../../../src/models/index.js";
import type { QwenFamily } from "../../../src/models/qwen2_vl/index.js";
import { cat, type Tensor, tidy } from "../../../src/torch/index.js";

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../../..");
export const QWEN_FIXTURES = path.join(ROOT, "test/fixtures/qwen2_vl");
export const MODEL_DIRS: Record<QwenFamily, string> = {
  qwen2_vl: path.join(ROOT, "test/fixtures/models/tiny-qwen2-vl"),
  qwen2_5_vl: path.join(ROOT, "test/fixtures/models/tiny-qwen2.5-vl"),
};
export const FAMILIES: readonly QwenFamily[] = ["qwen2_vl", "qwen2_5_vl"];

export interface ModelCase {
  input_ids: number[][];
  attention_mask: number[][];
  position_ids: number[][][];
  rope_deltas: number[];
  decode_position_ids: number[][][];
  /** Logits stored for the last this many positions. */
  logits_positions: number;
  images?: string[];
  image_grid_thw?: number[][];
  greedy_new_ids?: number[][];
}

export interface ProcessorCase {
  name: string;
  images: string[];
  messages: { role: "user"; content: ({ type: "image" } | { type: "text"; text: string })[] }[];
  text: string;
  image_grid_thw: number[][];
  input_ids: Record<QwenFamily, number[]>;
}

export interface Reference {
  versions: Record<string, string>;
  tokenizer: Record<string, number | null>;
  families: Record<QwenFamily, { cases: Record<string, ModelCase>; folder: string }>;
  processor: {
    smart_resize: { height: number; width: number; min_pixels: number; max_pixels: number; resized?: [number, number]; error?: string }[];
    config: { min_pixels: number; max_pixels: number; patch_size: number; temporal_patch_size: number; merge_size: number };
    cases: ProcessorCase[];
    images: Record<string, { width: number; height: number; image_grid_thw: number[] }>;
  };
  config_conversions: { input: Record<string, unknown>; saved: Record<string, unknown> }[];
  /** transformers' full-size models (meta device): parameter paths with layer indices collapsed, shapes, counts, total. */
  full_size: Record<QwenFamily, { num_parameters: number; parameters: Record<string, { shape: number[]; count: number }> }>;
}

let cached: Reference | undefined;
export function reference(): Reference {
  cached ??= JSON.parse(fs.readFileSync(path.join(QWEN_FIXTURES, "reference.json"), "utf8")) as Reference;
  return cached;
}

/** The per-family tensors (logits, image features); the caller disposes them. */
export function familyTensors(family: QwenFamily): Map<string, Tensor> {
  return loadSafetensors(path.join(QWEN_FIXTURES, `${family}.safetensors`));
}

/** The processor's tensors (per-image pixel values, first temporal copy only); the caller disposes them. */
export function processorTensors(): Map<string, Tensor> {
  return loadSafetensors(path.join(QWEN_FIXTURES, "processor.safetensors"));
}

/**
 * transformers' pixel_values of one image [patches, 3*2*14*14] from the stored
 * first temporal copy [patches, 3*14*14] (a still image repeats in time).
 */
export function expandTemporal(t0: Tensor, temporal = 2): Tensor {
  return tidy(() => {
    const n = t0.size(0);
    const plane = t0.size(1) / 3;
    return t0.view(n, 3, 1, plane).expand(n, 3, temporal, plane).reshape(n, 3 * temporal * plane);
  });
}

/** pixel_values of a list of fixture images ("img_grid46.png" ...), concatenated. */
export function pixelValuesOf(images: readonly string[], proc: Map<string, Tensor>): Tensor {
  return tidy(() => cat(images.map((f) => expandTemporal(proc.get(`image.${f.replace(/^img_|\.png$/g, "")}.pixel_values_t0`)!)), 0));
}

/**
 * Per-prompt image inputs from batch-level patches (image after image) and
 * their grids: prompt k gets the patch rows (t*h*w each) and grid rows of its
 * imagesPerPrompt[k] images. New handles: dispose them (or call inside tidy).
 */
export function splitImages(pixelValues: Tensor, imageGridThw: Tensor, imagesPerPrompt: readonly number[]): ImageInputs[] {
  const grids = imageGridThw.toList() as number[][];
  const out: ImageInputs[] = [];
  let image = 0;
  let row = 0;
  for (const n of imagesPerPrompt) {
    const rows = grids.slice(image, image + n).reduce((a, g) => a + g[0] * g[1] * g[2], 0);
    out.push({ pixelValues: pixelValues.narrow(0, row, rows), imageGridThw: imageGridThw.narrow(0, image, n) });
    image += n;
    row += rows;
  }
  if (image !== grids.length || row !== pixelValues.size(0)) throw new Error(`splitImages: ${imagesPerPrompt.join("+")} images do not cover the ${grids.length} grids / ${pixelValues.size(0)} patch rows`);
  return out;
}
