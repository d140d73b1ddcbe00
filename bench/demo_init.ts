// A randomly initialized Idefics3 model folder from a preset with its shapes
// changed (for the demo sweeps): the preset's config.json object with
// `overrides` merged key by key into vision_config / text_config / the top
// level, and the processor's longest edge. Same steps as the family's
// initPreset + initModel, with the merge in between.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { writeTokenizerFiles } from "../src/io/tokenizer_builder.js";
import { resolveIdefics3Config } from "../src/models/idefics3/config.js";
import { idefics3Family } from "../src/models/idefics3/family.js";
import { writeProcessorFiles } from "../src/models/idefics3/image_processor_config.js";
import { type Idefics3PresetName, presetRawConfig } from "../src/models/idefics3/presets.js";
import { savePretrained } from "../src/models/load.js";
import type { RawConfig } from "../src/models/configs.js";

export interface ShapeOverrides {
  vision?: RawConfig;
  text?: RawConfig;
  scaleFactor?: number;
  /** Processor size.longest_edge (default: the vision image_size). */
  longestEdge?: number;
}

export async function initOverridden(o: { preset: string; overrides: ShapeOverrides; outDir: string; seed: number; visionInit: "siglip" | "initializer_range"; initStd?: number }) {
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-sweep-init-"));
  try {
    const tok = await writeTokenizerFiles(staging, {});
    const imageTokenId = tok.specialTokenIds["<image>"];
    const raw = presetRawConfig("idefics3", o.preset as Idefics3PresetName, { ...tok, imageTokenId });
    const v = { ...(raw.vision_config as RawConfig), ...o.overrides.vision };
    const t = { ...(raw.text_config as RawConfig), ...o.overrides.text, ...(o.initStd !== undefined ? { initializer_range: o.initStd } : {}) };
    const merged = { ...raw, vision_config: v, text_config: t, ...(o.overrides.scaleFactor !== undefined ? { scale_factor: o.overrides.scaleFactor } : {}) };
    const config = resolveIdefics3Config(merged, `preset ${o.preset} with overrides`);
    await writeProcessorFiles(staging, { imageSize: config.vision.imageSize, imageSeqLen: config.imageSeqLen, doImageSplitting: false, longestEdge: o.overrides.longestEdge ?? config.vision.imageSize });
    const model = idefics3Family.build(config, { dtype: "float32" });
    try {
      idefics3Family.initWeights(model, config, o.seed, { visionInit: o.visionInit });
      const files = fs.readdirSync(staging).filter((f) => fs.statSync(path.join(staging, f)).isFile());
      await savePretrained(model, o.outDir, { dtype: "float32", copyFilesFrom: staging, copyFileNames: files });
      return { config, numParameters: model.numParameters() };
    } finally {
      model.dispose();
    }
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
