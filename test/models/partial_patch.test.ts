// A vision image_size that is not a multiple of patch_size: transformers
// floors the patch count (its stride-p patch conv drops the partial patch at
// the right and bottom edges), so such checkpoints (SmolVLM-Instruct: 384 px,
// patch 14) load. Here: 36 px tiles with 8 px patches give 4 x 4 patches, the
// same image features as the tile cropped to 32 px, whatever the dropped
// pixels hold. transformers itself judges it in test/peers/hf_to_ours.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";

import { buildModel, idefics3ConfigToJson, type Idefics3ForConditionalGeneration, initWeights, resolveIdefics3Config } from "../../src/models/index.js";
import { manualSeed, randn, tidy } from "../../src/torch/index.js";
import { testConfig } from "./helpers.js";

test("image_size 36, patch_size 8: 4 x 4 patches (16 positions), the partial patch ignored", () => {
  const tiny = idefics3ConfigToJson(testConfig("idefics3") as Parameters<typeof idefics3ConfigToJson>[0]);
  const raw = { ...tiny, vision_config: { ...(tiny.vision_config as Record<string, unknown>), image_size: 36, patch_size: 8 } };
  const config = resolveIdefics3Config(raw);
  assert.equal(config.imageSeqLen, 4, "(floor(36 / 8) / scale 2)^2");
  const model = buildModel(config, { dtype: "float64" }) as Idefics3ForConditionalGeneration;
  try {
    initWeights(model, 0.1, 3);
    model.eval();
    const pos = model.model.vision_model.embeddings.position_embedding.weight;
    assert.equal(pos.size(0), 16, "position embeddings for 4 x 4 patches");
    tidy(() => {
      manualSeed(5);
      const full = randn([2, 3, 36, 36], { dtype: "float64" });
      const cropped = full.narrow(2, 0, 32).narrow(3, 0, 32).contiguous();
      const a = model.encodeImages(full);
      const b = model.encodeImages(cropped);
      assert.deepEqual(a.shape, [2, 4, config.text.hiddenSize]);
      assert.equal(a.sub(b).abs().max().item(), 0, "the last 4 pixel rows and columns change nothing");
      // With a pixel mask that marks every pixel real: the same.
      const mask = full.select(1, 0).ne(1e9);
      assert.equal(model.encodeImages(full, mask).sub(b).abs().max().item(), 0);
    });
  } finally {
    model.dispose();
  }
});
