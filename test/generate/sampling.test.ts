import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveSampling, selectNext, warpLogits } from "../../src/generate/index.js";
import { Generator, liveTensors, tensor, tidy } from "../../src/torch/index.js";

const finiteMask = (t: { toFlatArray(): number[] }) => t.toFlatArray().map((v) => Number.isFinite(v));

test("top-k keeps exactly the k largest logits", () => {
  tidy(() => {
    const logits = tensor([[1, 5, 3, 4, 2]]);
    const w = warpLogits(logits, resolveSampling({ topK: 2 }));
    assert.deepEqual(finiteMask(w), [false, true, false, true, false]);
  });
});

test("top-p keeps the smallest head reaching p (HF's ascending-cumsum rule)", () => {
  tidy(() => {
    // probs 0.5, 0.3, 0.15, 0.05: ascending cumsum 0.05, 0.2, 0.5, 1 -> drop <= 0.2
    const logits = tensor([[0.5, 0.3, 0.15, 0.05]]).log();
    const w = warpLogits(logits, resolveSampling({ topP: 0.8 }));
    assert.deepEqual(finiteMask(w), [true, true, false, false]);
    // A tiny p still keeps the top token.
    const w2 = warpLogits(logits, resolveSampling({ topP: 0.01 }));
    assert.deepEqual(finiteMask(w2), [true, false, false, false]);
  });
});

test("temperature scales logits and log-probs are log_softmax(logits / T)", () => {
  tidy(() => {
    const raw = [2, 0, -1];
    const T = 0.5;
    const logits = tensor([raw]);
    const out = selectNext(logits, resolveSampling({ doSample: false, temperature: T }));
    assert.equal(out.tokens.toFlatArray()[0], 0);
    // doSample false resolves temperature to 1 (greedy ignores it): log_softmax(raw).
    const z = Math.log(raw.reduce((a, v) => a + Math.exp(v), 0));
    assert.ok(Math.abs(out.logProbs.toFlatArray()[0] - (raw[0] - z)) < 1e-6);
    const s = selectNext(logits, resolveSampling({ temperature: T }), new Generator(1));
    const zt = Math.log(raw.reduce((a, v) => a + Math.exp(v / T), 0));
    const id = s.tokens.toFlatArray()[0];
    assert.ok(Math.abs(s.logProbs.toFlatArray()[0] - (raw[id] / T - zt)) < 1e-5);
  });
});

test("sampling follows the distribution and is reproducible under a seed", () => {
  tidy(() => {
    const rows = 4000;
    const logits = tensor([[Math.log(0.7), Math.log(0.3)]]).repeat(rows, 1);
    const a = selectNext(logits, resolveSampling({ temperature: 1 }), new Generator(7)).tokens.toFlatArray();
    const b = selectNext(logits, resolveSampling({ temperature: 1 }), new Generator(7)).tokens.toFlatArray();
    assert.deepEqual(a, b);
    const share1 = a.filter((x) => x === 1).length / rows;
    // Binomial sd = sqrt(0.21/4000) ~ 0.0072; 5 sd band.
    assert.ok(Math.abs(share1 - 0.3) < 0.036, `share of token 1 = ${share1}`);
  });
});

test("invalid sampling options are refused with the option named", () => {
  assert.throws(() => resolveSampling({ temperature: 0, doSample: true }), /temperature/);
  assert.throws(() => resolveSampling({ topP: 0 }), /topP/);
  assert.throws(() => resolveSampling({ topK: -1 }), /topK/);
});

test("no tensors leak from sampling", () => {
  const before = liveTensors();
  const logits = tensor([[1, 2, 3]]);
  for (let i = 0; i < 20; i++) {
    const r = selectNext(logits, resolveSampling({ topK: 2, topP: 0.9 }), new Generator(i));
    r.tokens.dispose();
    r.logProbs.dispose();
  }
  logits.dispose();
  assert.equal(liveTensors(), before);
});
