// The vision tower's index arithmetic, against values worked out by hand from
// transformers' rules, and segment attention against one masked attention;
// plus: forward, image encoding, generation and a training step free every
// tensor they make.
import assert from "node:assert/strict";
import { test } from "node:test";

import { generate } from "../../../src/generate/index.js";
import { attend } from "../../../src/nn/index.js";
import { loadQwenPretrained } from "../../../src/models/qwen2_vl/index.js";
import { frameSegments, inversePermutation, visionPositions, windowLayout } from "../../../src/models/qwen2_vl/vision_layout.js";
import { SegmentPlan } from "../../../src/models/qwen2_vl/vision.js";
import { F, liveTensors, manualSeed, noGrad, randn, tensor, tidy } from "../../../src/torch/index.js";
import { MODEL_DIRS, pixelValuesOf, processorTensors, reference, splitImages } from "./fixtures.js";

test("patch positions follow the 2x2 merge blocks, row-major", () => {
  // One 2 x 4 image: blocks (0,0) and (0,1), each row-major.
  assert.deepEqual(visionPositions([[1, 2, 4]], 2), [0, 0, 0, 1, 1, 0, 1, 1, 0, 2, 0, 3, 1, 2, 1, 3]);
  assert.deepEqual(frameSegments([[1, 4, 6], [2, 2, 2]]), [24, 4, 4]);
});

test("window layout: windows of side window/merge/patch merged tokens, cut short at the edges, empty ones dropped", () => {
  // Merged grid 2 x 3 with windows of 2 x 2 merged tokens: window 0 = columns 0-1, window 1 = column 2.
  const a = windowLayout([[1, 4, 6]], 2, 56, 14);
  assert.deepEqual(a.windowIndex, [0, 1, 3, 4, 2, 5]);
  assert.deepEqual(a.windowSegments, [16, 8]);
  // Merged 4 x 2 (exactly two windows high): no empty windows; a second image continues the numbering.
  const b = windowLayout([[1, 8, 4], [1, 2, 2]], 2, 56, 14);
  assert.deepEqual(b.windowIndex, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(b.windowSegments, [16, 16, 4]);
  // Larger windows than the image: one window per image.
  assert.deepEqual(windowLayout([[1, 4, 6]], 2, 112, 14).windowSegments, [24]);
  assert.deepEqual(inversePermutation([2, 0, 1]), [1, 2, 0]);
  assert.throws(() => windowLayout([[1, 4, 4]], 2, 50, 14), /must be a positive integer/);
});

test("segment attention equals one attention with a block-diagonal mask (max diff < 1e-6)", () => {
  manualSeed(0);
  const diff = tidy(() => {
    const segments = [16, 8, 16, 4, 8];
    const n = segments.reduce((a, b) => a + b, 0);
    const [q, k, v] = [randn([n, 2, 8]), randn([n, 2, 8]), randn([n, 2, 8])];
    const plan = new SegmentPlan(segments, "cpu");
    try {
      const ours = plan.attend(q, k, v);
      const seg: number[] = segments.flatMap((len, i) => new Array(len).fill(i));
      const id = tensor(seg, { dtype: "int64" });
      const mask = id.view(n, 1).eq(id.view(1, n)).view(1, 1, n, n);
      const ref = attend(q.transpose(0, 1).unsqueeze(0), k.transpose(0, 1).unsqueeze(0), v.transpose(0, 1).unsqueeze(0), { mask }).squeeze(0).transpose(0, 1);
      return ours.sub(ref).abs().max().item() as number;
    } finally {
      plan.dispose();
    }
  });
  assert.ok(diff < 1e-6, `segment attention differs by ${diff}`);
});

test("forward, image encoding, generation and a training step leave no tensors behind", async () => {
  const { model } = await loadQwenPretrained(MODEL_DIRS.qwen2_5_vl);
  const proc = processorTensors();
  const c = reference().families.qwen2_5_vl.cases.padded_batch;
  const inputs = {
    inputIds: tensor(c.input_ids.map((r) => r.map(BigInt))),
    attentionMask: tensor(c.attention_mask.map((r) => r.map(BigInt))),
    pixelValues: pixelValuesOf(c.images!, proc),
    imageGridThw: tensor(c.image_grid_thw!.map((r) => r.map(BigInt))),
  };
  try {
    const run = () => {
      noGrad(() => model.forward(inputs).logits.dispose());
      noGrad(() => model.encodeImages(inputs.pixelValues, inputs.imageGridThw).dispose());
      tidy(() => generate(model, { inputIds: inputs.inputIds, attentionMask: inputs.attentionMask, images: splitImages(inputs.pixelValues, inputs.imageGridThw, [1, 2]) }, { doSample: false, maxNewTokens: 3, eosTokenIds: [], padTokenId: 0, numReturnSequences: 2 }));
      // A training step: loss over the last positions, backward, then drop the gradients.
      tidy(() => {
        const logits = model.forward({ ...inputs, logitsToKeep: 4 }).logits;
        const loss = F.crossEntropy(logits.reshape(-1, logits.size(-1)), tensor([1, 2, 3, 4, 5, 6, 7, 8], { dtype: "int64" }));
        loss.backward();
      });
      for (const p of model.parameters()) {
        const g = p.grad;
        assert.ok(g, "every parameter gets a gradient");
        p.grad = null;
        g.dispose();
      }
    };
    run(); // warm-up: caches of constants (rotary frequencies) are made once
    const before = liveTensors();
    run();
    assert.equal(liveTensors(), before);
  } finally {
    model.dispose();
    for (const t of [...Object.values(inputs), ...proc.values()]) t.dispose();
  }
});
