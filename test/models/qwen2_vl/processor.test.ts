// The Qwen2-VL image processor and processor against transformers 5.18's
// (Qwen2VLImageProcessorPil, Qwen2VLProcessor, Qwen2_5_VLProcessor with
// Pillow 12): smart_resize over 150 sizes, pixel_values and image_grid_thw
// identical for six images (upscaled, round-half-even, downscaled, thin,
// exact grids), and the prompt ids of the chat template from the checkpoint
// plus the <|image_pad|> expansion identical.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { decodeImage } from "../../../src/io/image_decode.js";
import { HFTokenizer } from "../../../src/io/tokenizer.js";
import {
  expandImagePads,
  planImage,
  processQwenImages,
  QwenVLProcessor,
  readQwenImageProcessorConfig,
  resolveQwenImageProcessorConfig,
  roundHalfEven,
  smartResize,
} from "../../../src/models/qwen2_vl/index.js";
import { type Tensor, tidy } from "../../../src/torch/index.js";
import { expandTemporal, FAMILIES, MODEL_DIRS, processorTensors, QWEN_FIXTURES, reference } from "./fixtures.js";

const ref = reference().processor;

test("smart_resize equals transformers' over 150 sizes and three limit settings (errors included)", () => {
  assert.equal(ref.smart_resize.length, 150);
  for (const g of ref.smart_resize) {
    const what = `${g.height}x${g.width} in [${g.min_pixels}, ${g.max_pixels}]`;
    if (g.error) {
      assert.throws(() => smartResize(g.height, g.width, 28, g.min_pixels, g.max_pixels), /aspect ratio must be smaller than 200/, what);
      continue;
    }
    const r = smartResize(g.height, g.width, 28, g.min_pixels, g.max_pixels);
    assert.deepEqual([r.height, r.width], g.resized, what);
  }
  assert.throws(() => smartResize(10, 2500), /absolute aspect ratio must be smaller than 200, got 250/);
});

test("round half to even, as Python's round", () => {
  assert.deepEqual([0.5, 1.5, 2.5, 3.5, 4.5, 2.4999, 2.5001, 7].map(roundHalfEven), [0, 2, 2, 4, 4, 2, 3, 7]);
});

describe("image processor", () => {
  let proc: Map<string, Tensor>;
  before(() => {
    proc = processorTensors();
  });
  after(() => {
    for (const t of proc.values()) t.dispose();
  });

  test("the fixture's processor_config.json (transformers 5.18's nested layout) reads as the settings used", () => {
    const c = readQwenImageProcessorConfig(MODEL_DIRS.qwen2_vl);
    assert.equal(c.minPixels, ref.config.min_pixels);
    assert.equal(c.maxPixels, ref.config.max_pixels);
    assert.deepEqual([c.patchSize, c.temporalPatchSize, c.mergeSize, c.resample], [14, 2, 2, 3]);
  });

  test("pixel_values and image_grid_thw are identical to transformers' for every image (max diff 0)", async () => {
    const c = readQwenImageProcessorConfig(MODEL_DIRS.qwen2_vl);
    for (const [name, info] of Object.entries(ref.images)) {
      const img = await decodeImage(path.join(QWEN_FIXTURES, `img_${name}.png`));
      assert.deepEqual([img.width, img.height], [info.width, info.height]);
      assert.deepEqual(planImage(img.height, img.width, c).grid, info.image_grid_thw, `${name}: grid`);
      const out = await processQwenImages([img], c);
      try {
        assert.deepEqual(out.imageGridThw, [info.image_grid_thw]);
        const diff = tidy(() => {
          const want = expandTemporal(proc.get(`image.${name}.pixel_values_t0`)!);
          assert.deepEqual(out.pixelValues.shape, want.shape, `${name}: shape`);
          return out.pixelValues.sub(want).abs().max().item() as number;
        });
        assert.equal(diff, 0, `${name}: pixel values differ by ${diff}`);
      } finally {
        out.pixelValues.dispose();
      }
    }
  });
});

for (const family of FAMILIES) {
  test(`${family}: chat template from the checkpoint + expansion + tokenizer give transformers' prompt ids`, async () => {
    const tok = await HFTokenizer.fromDir(MODEL_DIRS[family]);
    const p = QwenVLProcessor.fromDir(MODEL_DIRS[family], tok);
    for (const c of ref.cases) {
      const text = tok.applyChatTemplate(c.messages, { addGenerationPrompt: true });
      assert.equal(text, c.text, `${c.name}: rendered prompt`);
      const batch = await p.prepare([{ text, images: c.images.map((f) => path.join(QWEN_FIXTURES, f)) }]);
      try {
        assert.deepEqual(batch.inputIds.toList(), [c.input_ids[family]], `${c.name}: input ids`);
        assert.deepEqual(batch.imageGridThw.toList(), c.image_grid_thw, `${c.name}: grids`);
        assert.deepEqual(batch.numImageTokens, c.image_grid_thw.map(([t, h, w]) => (t * h * w) / 4));
      } finally {
        for (const t of [batch.inputIds, batch.attentionMask, batch.pixelValues, batch.imageGridThw]) t.dispose();
      }
    }
  });
}

test("prepare pads on the left by default and checks markers against images", async () => {
  const tok = await HFTokenizer.fromDir(MODEL_DIRS.qwen2_vl);
  const p = QwenVLProcessor.fromDir(MODEL_DIRS.qwen2_vl, tok);
  const img = path.join(QWEN_FIXTURES, "img_grid46.png");
  const b = await p.prepare([
    { text: "<|vision_start|><|image_pad|><|vision_end|>hi", images: [img] },
    { text: "<|vision_start|><|image_pad|><|vision_end|>a longer text here", images: [img] },
  ]);
  try {
    const mask = b.attentionMask.toList() as number[][];
    const ids = b.inputIds.toList() as number[][];
    const short = b.lengths[0];
    assert.ok(short < b.lengths[1]);
    assert.deepEqual(mask[0].slice(0, ids[0].length - short), new Array(ids[0].length - short).fill(0));
    assert.ok(ids[0].slice(0, ids[0].length - short).every((t) => t === tok.padTokenId));
    assert.equal(b.pixelValues.size(0), 2 * 24);
  } finally {
    for (const t of [b.inputIds, b.attentionMask, b.pixelValues, b.imageGridThw]) t.dispose();
  }
  await assert.rejects(p.prepare([{ text: "no marker", images: [img] }]), /sample 0 has 0 <\|image_pad\|> marker\(s\) in its text but 1 image\(s\)/);
  assert.throws(() => expandImagePads("<|image_pad|> and <|image_pad|>", [4]), /2 <\|image_pad\|> marker\(s\) but 1 image\(s\)/);
  assert.equal(expandImagePads("a<|image_pad|>b", [3]), "a<|image_pad|><|image_pad|><|image_pad|>b");
});

test("image processor configs: hub preprocessor_config.json fields, min/max_pixels overrides, bad values named", () => {
  const c = resolveQwenImageProcessorConfig({ min_pixels: 3136, max_pixels: 12845056, size: { shortest_edge: 1, longest_edge: 2 }, resample: 3 });
  assert.deepEqual([c.minPixels, c.maxPixels], [3136, 12845056]);
  const d = resolveQwenImageProcessorConfig({ size: { min_pixels: 100, max_pixels: 200 } });
  assert.deepEqual([d.minPixels, d.maxPixels], [100, 200]);
  const e = resolveQwenImageProcessorConfig({});
  assert.deepEqual([e.minPixels, e.maxPixels, e.rescaleFactor], [3136, 1003520, 1 / 255]);
  assert.throws(() => resolveQwenImageProcessorConfig({ image_mean: [0.5, 0.5] }, "x.json"), /x\.json: field "image_mean" must be a number or three numbers/);
  assert.throws(() => resolveQwenImageProcessorConfig({ min_pixels: 500, max_pixels: 100 }, "x.json"), /min_pixels 500 is above max_pixels 100/);
  assert.throws(() => resolveQwenImageProcessorConfig({ patch_size: [14, 14] }, "x.json"), /patch_size" must be one integer/);
  assert.throws(() => planImage(50, 50, { ...e, doResize: false }), /multiples of patch_size \* merge_size = 28/);
});
