// Generation loop semantics on a fake "counting" model whose next token is
// (last token + 1) mod V: EOS, stop strings, lengths, group sharing, padding.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type CausalLMForwardInputs, generate, type GenerationCache, type GenerativeModel, positionsFromMask } from "../../src/generate/index.js";
import type { ImageInputs } from "../../src/models/index.js";
import { F, liveTensors, type Tensor, tensor, tidy } from "../../src/torch/index.js";

const V = 16;

class FakeCache implements GenerationCache {
  disposed = false;
  constructor(public readonly log: string[]) {}
  repeatBatch(n: number): GenerationCache {
    this.log.push(`repeat${n}`);
    return new FakeCache(this.log);
  }
  dispose(): void {
    this.disposed = true;
  }
}

class CountingModel implements GenerativeModel {
  log: string[] = [];
  imageCalls = 0;
  forwardShapes: number[][] = [];
  positions: number[][] = [];
  forward(inputs: CausalLMForwardInputs): { logits: Tensor } {
    this.forwardShapes.push([...inputs.inputIds.shape]);
    if (inputs.positionIds) this.positions.push(inputs.positionIds.toFlatArray());
    if (inputs.pixelValues) this.imageCalls += inputs.pixelValues.shape[0];
    const last = inputs.inputIds.select(1, inputs.inputIds.shape[1] - 1);
    const next = last.add(1).remainder(V);
    const logits = F.oneHot(next, V).float().mul(10).unsqueeze(1);
    return { logits };
  }
  newCache(): GenerationCache {
    return new FakeCache(this.log);
  }
  encodeImageTokens(images: ImageInputs): Tensor {
    this.imageCalls += images.pixelValues.shape[0];
    return images.pixelValues;
  }
}

const decode = (ids: number[]) => ids.map((i) => String.fromCharCode(97 + i)).join("");

test("greedy counting, EOS kept and ending the completion", () => {
  tidy(() => {
    const m = new CountingModel();
    const r = generate(m, { inputIds: tensor([[1, 2]], { dtype: "int64" }) }, { eosTokenIds: [6], padTokenId: 0, maxNewTokens: 10, doSample: false, decode });
    assert.deepEqual(r.completions[0].tokenIds, [3, 4, 5, 6]);
    assert.equal(r.completions[0].finishReason, "eos");
    assert.equal(r.completions[0].text, "defg");
    assert.equal(r.completions[0].logProbs.length, 4);
    assert.equal(r.forwardPasses, 4);
  });
});

test("maxNewTokens and stop strings", () => {
  tidy(() => {
    const m = new CountingModel();
    const r = generate(m, { inputIds: tensor([[1]], { dtype: "int64" }) }, { eosTokenIds: [15], padTokenId: 0, maxNewTokens: 3, doSample: false, decode });
    assert.deepEqual(r.completions[0].tokenIds, [2, 3, 4]);
    assert.equal(r.completions[0].finishReason, "length");
    const s = generate(m, { inputIds: tensor([[1]], { dtype: "int64" }) }, { eosTokenIds: [15], padTokenId: 0, maxNewTokens: 10, doSample: false, decode, stopStrings: ["de"] });
    assert.equal(s.completions[0].text, "cde");
    assert.equal(s.completions[0].finishReason, "stop");
  });
});

test("group sharing: one prefill per prompt, same greedy results as repeating prompts", () => {
  tidy(() => {
    const inputs = { inputIds: tensor([[0, 1], [5, 7]], { dtype: "int64" }), attentionMask: tensor([[0, 1], [1, 1]], { dtype: "int64" }), images: [{ pixelValues: tensor([[1, 2]]) }, { pixelValues: tensor([[3, 4]]) }] };
    const shared = new CountingModel();
    const a = generate(shared, inputs, { eosTokenIds: [11], padTokenId: 0, maxNewTokens: 5, doSample: false, numReturnSequences: 3 });
    const plain = new CountingModel();
    const b = generate(plain, inputs, { eosTokenIds: [11], padTokenId: 0, maxNewTokens: 5, doSample: false, numReturnSequences: 3, shareGroup: false });
    assert.deepEqual(a.completions.map((c) => c.tokenIds), b.completions.map((c) => c.tokenIds));
    assert.deepEqual(a.completions.map((c) => c.promptIndex), [0, 0, 0, 1, 1, 1]);
    assert.deepEqual(a.completions[3].tokenIds, [8, 9, 10, 11]);
    assert.deepEqual(shared.forwardShapes[0], [2, 2]);
    assert.deepEqual(plain.forwardShapes[0], [6, 2]);
    assert.equal(shared.imageCalls, 2);
    assert.equal(plain.imageCalls, 6);
    assert.deepEqual(shared.log, ["repeat3"]);
    // Left padding: prompt 0 positions are [1(pad), 0], then 1, 2, ... per step.
    assert.deepEqual(shared.positions[0], [1, 0, 0, 1]);
    assert.deepEqual(shared.positions[1], [1, 1, 1, 2, 2, 2]);
  });
});

test("positionsFromMask matches HF's cumsum rule", () => {
  tidy(() => {
    assert.deepEqual(positionsFromMask(tensor([[0, 0, 1, 1, 1]], { dtype: "int64" })).toFlatArray(), [1, 1, 0, 1, 2]);
  });
});

test("generation releases every tensor it makes", () => {
  const m = new CountingModel();
  const ids = tensor([[1, 2]], { dtype: "int64" });
  const before = liveTensors();
  generate(m, { inputIds: ids }, { eosTokenIds: [9], padTokenId: 0, maxNewTokens: 6, temperature: 1, seed: 3, numReturnSequences: 4 });
  assert.equal(liveTensors(), before);
  ids.dispose();
});
