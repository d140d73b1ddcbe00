// Generation on the tiny Qwen2-VL / Qwen2.5-VL checkpoints of transformers 5.18:
// greedy ids through src/generate's generate() equal transformers' generate()
// (16 new tokens, KV cache); the cached decode equals a full forward over the
// whole sequence; group sharing (one vision pass and one prefill per prompt,
// rope deltas repeated per completion) gives the same completions as
// recomputing everything per completion; a left-padded batch row equals the
// prompt alone.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { generate } from "../../../src/generate/index.js";
import { loadQwenPretrained, type QwenVLForConditionalGeneration } from "../../../src/models/qwen2_vl/index.js";
import { cat, keep, noGrad, type Tensor, tensor, tidy } from "../../../src/torch/index.js";
import { disposeImageInputs } from "../../../src/models/index.js";
import { FAMILIES, MODEL_DIRS, type ModelCase, pixelValuesOf, processorTensors, reference, splitImages } from "./fixtures.js";

const PAD = reference().tokenizer.pad_token_id as number;

interface Prepared {
  inputIds: Tensor;
  attentionMask: Tensor;
  pixelValues: Tensor;
  imageGridThw: Tensor;
}

function prepare(c: ModelCase, proc: Map<string, Tensor>): Prepared {
  return {
    inputIds: keep(tensor(c.input_ids.map((r) => r.map(BigInt)))),
    attentionMask: keep(tensor(c.attention_mask.map((r) => r.map(BigInt)))),
    pixelValues: keep(pixelValuesOf(c.images!, proc)),
    imageGridThw: keep(tensor(c.image_grid_thw!.map((r) => r.map(BigInt)))),
  };
}

const dispose = (p: Prepared) => Object.values(p).forEach((t) => t.dispose());

/** The generation inputs of a prepared case: each prompt's images (its <|vision_start|> count) as its own ImageInputs. */
function withImages(p: Prepared, c: ModelCase) {
  const perPrompt = c.input_ids.map((row) => row.filter((id) => id === reference().tokenizer.vision_start_token_id).length);
  return { inputIds: p.inputIds, attentionMask: p.attentionMask, images: splitImages(p.pixelValues, p.imageGridThw, perPrompt) };
}

for (const family of FAMILIES) {
  describe(`${family}: generation`, () => {
    let model: QwenVLForConditionalGeneration;
    let proc: Map<string, Tensor>;
    const cases = reference().families[family].cases;

    before(async () => {
      ({ model } = await loadQwenPretrained(MODEL_DIRS[family]));
      model.eval();
      proc = processorTensors();
    });
    after(() => {
      model.dispose();
      for (const t of proc.values()) t.dispose();
    });

    for (const name of ["one_image", "padded_batch"]) {
      test(`greedy ids equal transformers' generate(): ${name}`, () => {
        const p = prepare(cases[name], proc);
        try {
          const r = tidy(() => generate(model, withImages(p, cases[name]), { doSample: false, maxNewTokens: 16, eosTokenIds: [], padTokenId: PAD }));
          assert.deepEqual(
            r.completions.map((c) => c.tokenIds),
            cases[name].greedy_new_ids,
          );
          assert.equal(r.forwardPasses, 16);
        } finally {
          dispose(p);
        }
      });
    }

    test("KV-cache decoding equals a full forward over prompt + completion (max diff < 1e-5)", () => {
      const c = cases.padded_batch;
      const p = prepare(c, proc);
      try {
        const steps = 6;
        const worst = noGrad(() =>
          tidy(() => {
            // Cached: prefill, then one token at a time with decode positions from the rope deltas.
            const cache = model.newCache();
            try {
              const { positionIds, ropeDeltas: state } = model.prefillPositions(p.inputIds, p.attentionMask, { pixelValues: p.pixelValues, imageGridThw: p.imageGridThw });
              let out = model.forward({ ...p, positionIds, cache }).logits;
              const stepLogits: Tensor[] = [out.narrow(1, out.size(1) - 1, 1)];
              let ids = p.inputIds;
              let mask = p.attentionMask;
              for (let s = 0; s < steps; s++) {
                const next = stepLogits[s].argmax(-1); // (B, 1)
                ids = cat([ids, next], 1);
                mask = cat([mask, tensor([[1n], [1n]])], 1);
                out = model.forward({ inputIds: next, attentionMask: mask, positionIds: model.decodePositions(mask, state), cache }).logits;
                stepLogits.push(out);
              }
              // Full: the whole sequence at once, positions from the rope index over it.
              const full = model.forward({ inputIds: ids, attentionMask: mask, pixelValues: p.pixelValues, imageGridThw: p.imageGridThw }).logits;
              const t0 = p.inputIds.size(1) - 1;
              let w = 0;
              stepLogits.forEach((l, s) => {
                w = Math.max(w, l.select(1, 0).sub(full.select(1, t0 + s)).abs().max().item() as number);
              });
              return w;
            } finally {
              cache.dispose();
            }
          }),
        );
        console.log(`# ${family}: cached decode vs full forward, max |logit diff| ${worst.toExponential(2)}`);
        assert.ok(worst < 1e-5, `cached decode differs from the full forward by ${worst}`);
      } finally {
        dispose(p);
      }
    });

    test("group sharing equals per-completion recomputation (greedy and seeded sampling), rope deltas repeated per row", () => {
      const p = prepare(cases.padded_batch, proc); // prompt 0 has one image, prompt 1 two of other sizes
      try {
        const ids = (r: ReturnType<typeof generate>) => r.completions.map((x) => x.tokenIds);
        const base = { maxNewTokens: 8, eosTokenIds: [], padTokenId: PAD, numReturnSequences: 3 };
        const q = withImages(p, cases.padded_batch);
        const shared = generate(model, q, { ...base, doSample: false });
        const unshared = generate(model, q, { ...base, doSample: false, shareGroup: false });
        assert.deepEqual(ids(shared), ids(unshared));
        const single = generate(model, q, { ...base, numReturnSequences: 1, doSample: false });
        assert.deepEqual(ids(shared), single.completions.flatMap((c) => [c.tokenIds, c.tokenIds, c.tokenIds]).map((x) => x.slice(0, 8)));
        const sample = { ...base, temperature: 1.2, topK: 50, seed: 3 };
        const a = generate(model, q, sample);
        const b = generate(model, q, { ...sample, shareGroup: false });
        assert.deepEqual(ids(a), ids(b));
        a.completions.forEach((x, i) => x.logProbs.forEach((lp, j) => assert.ok(Math.abs(lp - b.completions[i].logProbs[j]) < 1e-4, `log-prob ${i}.${j}`)));
        for (const im of q.images) disposeImageInputs(im);
      } finally {
        dispose(p);
      }
    });

    test("each row of a left-padded batch equals its prompt alone (max diff < 1e-5)", () => {
      const batch = prepare(cases.padded_batch, proc);
      const alone = [prepare(cases.one_image, proc), prepare(cases.two_images, proc)];
      try {
        // padded_batch = [one_image's prompt with the 8x4 image, two_images' prompt]: row 1 is two_images exactly.
        const worst = noGrad(() =>
          tidy(() => {
            const full = model.forward(batch).logits; // (2, T, V)
            const T = full.size(1);
            const row1 = model.forward(alone[1]).logits.select(0, 0);
            const len0 = (cases.padded_batch.attention_mask[0] as number[]).reduce((a, b) => a + b, 0);
            // Row 0 alone: its unpadded ids with its own image (the first grid of the batch).
            const ids0 = batch.inputIds.select(0, 0).narrow(0, T - len0, len0).unsqueeze(0);
            const g0 = cases.padded_batch.image_grid_thw![0];
            const rows0 = g0[0] * g0[1] * g0[2];
            const row0 = model.forward({ inputIds: ids0, pixelValues: batch.pixelValues.narrow(0, 0, rows0), imageGridThw: tensor([g0.map(BigInt)]) }).logits.select(0, 0);
            const d0 = full.select(0, 0).narrow(0, T - len0, len0).sub(row0).abs().max().item() as number;
            const d1 = full.select(0, 1).sub(row1).abs().max().item() as number;
            return Math.max(d0, d1);
          }),
        );
        console.log(`# ${family}: padded batch vs each prompt alone, max |logit diff| ${worst.toExponential(2)}`);
        assert.ok(worst < 1e-5, `padded batch rows differ from the prompts alone by ${worst}`);
      } finally {
        dispose(batch);
        alone.forEach(dispose);
      }
    });
  });
}
