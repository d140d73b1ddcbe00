// The demo's model preset: the shapes the demo's sweep chose (BENCHMARKS.md,
// "What makes the demo model see") resolve to 16 image tokens over a 20x20
// patch grid of a 120 px image, and init-model writes a processor that feeds
// the tower 120 px images (not tiny's 32 px).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { initModel, presetConfig } from "../../src/models/index.js";
import type { Idefics3Config } from "../../src/models/idefics3/config.js";
import { tempDir, TOKENS } from "./helpers.js";

test("preset 'demo': 120 px images of 6 px patches, scale 5 -> 16 tokens per image; tiny's widths", () => {
  const c = presetConfig("idefics3", "demo", TOKENS) as Idefics3Config;
  const tiny = presetConfig("idefics3", "tiny", TOKENS) as Idefics3Config;
  assert.equal(c.vision.imageSize, 120);
  assert.equal(c.vision.patchSize, 6);
  assert.equal(c.scaleFactor, 5);
  assert.equal(c.imageSeqLen, ((120 / 6) * (120 / 6)) / (5 * 5));
  assert.equal(c.imageSeqLen, 16);
  assert.equal(c.vision.hiddenSize, tiny.vision.hiddenSize);
  assert.equal(c.text.hiddenSize, tiny.text.hiddenSize);
});

test("init-model --preset demo writes a processor that resizes to 120 px", async () => {
  const out = path.join(tempDir("demo-preset"), "m");
  const res = await initModel({ arch: "idefics3", preset: "demo", outDir: out, seed: 0, visionInit: "siglip", initializerRange: 0.08 });
  const pre = JSON.parse(fs.readFileSync(path.join(out, "preprocessor_config.json"), "utf8"));
  assert.equal(pre.size.longest_edge, 120);
  assert.equal(pre.max_image_size.longest_edge, 120);
  assert.equal(pre.do_image_splitting, false);
  assert.equal((res.config as Idefics3Config).imageSeqLen, 16);
});
