// The TypeScript models against a plain PyTorch implementation of the HF
// forward (scripts/fixtures/idefics3_reference.py) on the same seeded tiny
// checkpoints and inputs (scripts/fixtures/make_tiny_models.mjs): logits at
// every real (non-padding) position agree within 1e-4 (float32).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";

import { Idefics3ForConditionalGeneration, LlamaForCausalLM, loadPretrained } from "../../src/models/index.js";
import { noGrad, tensor, tidy } from "../../src/torch/index.js";

const FIXTURES = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../../test/fixtures/models");

interface Inputs {
  input_ids: number[][];
  attention_mask: number[][];
  pixel_shape?: number[];
  pixel_values?: number[];
  pixel_attention_mask?: number[];
}

function readJson<T>(folder: string, name: string): T {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, folder, name), "utf8")) as T;
}

/** Max |ours - expected| over real positions; asserts the shape. */
function compare(logits: number[], shape: number[], expected: { shape: number[]; logits: number[] }, mask: number[][]): number {
  assert.deepEqual(shape, expected.shape);
  const [b, t, v] = shape;
  let worst = 0;
  let checked = 0;
  for (let i = 0; i < b; i++)
    for (let j = 0; j < t; j++) {
      if (!mask[i][j]) continue;
      for (let k = 0; k < v; k++) {
        const o = (i * t + j) * v + k;
        worst = Math.max(worst, Math.abs(logits[o] - expected.logits[o]));
        checked++;
      }
    }
  assert.ok(checked > 0);
  return worst;
}

describe("models against the PyTorch reference", () => {
  test("Idefics3: 3 images (one partly padded, NaViT position ids), left-padded batch of 2", async () => {
    const { model } = await loadPretrained(path.join(FIXTURES, "tiny-idefics3"));
    assert.ok(model instanceof Idefics3ForConditionalGeneration);
    const inp = readJson<Inputs>("tiny-idefics3", "inputs.json");
    const exp = readJson<{ shape: number[]; logits: number[] }>("tiny-idefics3", "expected.json");
    const [n, , h, w] = inp.pixel_shape!;
    const { logits, shape } = noGrad(() =>
      tidy(() => {
        const out = model.forward({
          inputIds: tensor(inp.input_ids, { dtype: "int64" }),
          attentionMask: tensor(inp.attention_mask, { dtype: "int64" }),
          pixelValues: tensor(inp.pixel_values!).view(inp.pixel_shape!),
          pixelAttentionMask: tensor(inp.pixel_attention_mask!, { dtype: "bool" }).view(n, h, w),
        });
        assert.equal(out.logits.dtype, "float32");
        return { logits: out.logits.toFlatArray(), shape: out.logits.shape };
      }),
    );
    const worst = compare(logits, shape, exp, inp.attention_mask);
    assert.ok(worst < 1e-4, `max |diff| ${worst}`);
    model.dispose();
  });

  test("Llama with tied embeddings: left-padded batch of 2", async () => {
    const { model } = await loadPretrained(path.join(FIXTURES, "tiny-llama"));
    assert.ok(model instanceof LlamaForCausalLM);
    assert.ok(model.lm_head.weight.isSameTensor(model.model.embed_tokens.weight));
    const inp = readJson<Inputs>("tiny-llama", "inputs.json");
    const exp = readJson<{ shape: number[]; logits: number[] }>("tiny-llama", "expected.json");
    const { logits, shape } = noGrad(() =>
      tidy(() => {
        const out = model.forward({ inputIds: tensor(inp.input_ids, { dtype: "int64" }), attentionMask: tensor(inp.attention_mask, { dtype: "int64" }) });
        return { logits: out.logits.toFlatArray(), shape: out.logits.shape };
      }),
    );
    const worst = compare(logits, shape, exp, inp.attention_mask);
    assert.ok(worst < 1e-4, `max |diff| ${worst}`);
    model.dispose();
  });
});
