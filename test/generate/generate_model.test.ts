// Generation on the tiny Idefics3 fixture: exact greedy token ids against the
// PyTorch reference (scripts/fixtures/make_greedy_fixture.py: a full forward
// per token, no cache), reproducible sampling under a seed, and group sharing
// giving the same completions as recomputing everything per completion.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { generate } from "../../src/generate/index.js";
import { loadPretrained } from "../../src/models/load.js";
import type { Idefics3ForConditionalGeneration, ImageInputs } from "../../src/models/index.js";
import { keep, type Tensor, tensor } from "../../src/torch/index.js";

const DIR = fileURLToPath(new URL("../../../test/fixtures/models/tiny-idefics3", import.meta.url));
let model: Idefics3ForConditionalGeneration;
let inputs: { inputIds: Tensor; attentionMask: Tensor; images: ImageInputs[] };
let pixels: Tensor;
const greedy = JSON.parse(fs.readFileSync(path.join(DIR, "greedy.json"), "utf8")) as { new_tokens: number; suppressed: number[]; token_ids: number[][] };

before(async () => {
  model = (await loadPretrained(DIR)).model as Idefics3ForConditionalGeneration;
  model.eval();
  const raw = JSON.parse(fs.readFileSync(path.join(DIR, "inputs.json"), "utf8"));
  const inputIds = keep(tensor(raw.input_ids, { dtype: "int64" }));
  pixels = keep(tensor(Float32Array.from(raw.pixel_values), { shape: raw.pixel_shape }));
  // Each prompt's images: its <image> tokens / tokens per image, in row order.
  const perRow = (inputIds.eq(model.imageTokenId).sum(1).toFlatArray() as number[]).map((n) => n / model.config.imageSeqLen);
  let start = 0;
  const images = perRow.map((n) => {
    const img = { pixelValues: keep(pixels.narrow(0, start, n)) };
    start += n;
    return img;
  });
  inputs = { inputIds, attentionMask: keep(tensor(raw.attention_mask, { dtype: "int64" })), images };
});
after(() => {
  model.dispose();
  inputs.inputIds.dispose();
  inputs.attentionMask.dispose();
  for (const i of inputs.images) i.pixelValues.dispose();
  pixels.dispose();
});

test("greedy generation with the KV cache matches the PyTorch reference token for token", () => {
  const r = generate(model, inputs, { doSample: false, maxNewTokens: greedy.new_tokens, eosTokenIds: [], padTokenId: 0, suppressTokenIds: greedy.suppressed });
  assert.deepEqual(
    r.completions.map((c) => c.tokenIds),
    greedy.token_ids,
  );
  assert.ok(r.completions.every((c) => c.finishReason === "length" && c.logProbs.every((lp) => lp <= 0)));
});

test("sampling is reproducible under a seed, and group sharing equals per-completion recomputation", () => {
  const opts = { temperature: 1.3, topK: 20, topP: 0.95, maxNewTokens: 6, eosTokenIds: [], padTokenId: 0, numReturnSequences: 3, suppressTokenIds: greedy.suppressed };
  const a = generate(model, inputs, { ...opts, seed: 5 });
  const b = generate(model, inputs, { ...opts, seed: 5 });
  const c = generate(model, inputs, { ...opts, seed: 6 });
  const ids = (r: typeof a) => r.completions.map((x) => x.tokenIds);
  assert.deepEqual(ids(a), ids(b));
  assert.notDeepEqual(ids(a), ids(c));
  const unshared = generate(model, inputs, { ...opts, seed: 5, shareGroup: false });
  assert.deepEqual(ids(unshared), ids(a));
  a.completions.forEach((x, i) => x.logProbs.forEach((lp, j) => assert.ok(Math.abs(lp - unshared.completions[i].logProbs[j]) < 1e-4, `log-prob ${i}.${j}`)));
  assert.equal(a.forwardPasses, 6);
});
