// Random initialization: HF Idefics3's N(0, std^2) everywhere by default, and
// SigLIP's own scheme for the vision tower on request. Checked by the sample
// statistics of each kind of tensor (thousands of draws, so the tolerances
// below are several standard errors wide) and by reproducibility per seed.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { buildModel, initWeights } from "../../src/models/index.js";
import type { Tensor } from "../../src/torch/index.js";
import { testConfig } from "./helpers.js";
import type { Idefics3Config } from "../../src/models/index.js";

function stats(t: Tensor): { mean: number; std: number; min: number; max: number } {
  const x = Array.from(t.toFlatArray() as ArrayLike<number>);
  let s = 0;
  for (const v of x) s += v;
  const mean = s / x.length;
  let ss = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of x) {
    ss += (v - mean) ** 2;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  return { mean, std: Math.sqrt(ss / x.length), min, max };
}

function near(actual: number, expected: number, rel: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= rel * expected, `${what}: ${actual} not within ${rel * 100}% of ${expected}`);
}

const config = testConfig("idefics3", "small") as Idefics3Config;

function params(vision?: "siglip", seed = 0): Map<string, Tensor> {
  const m = buildModel(config, { dtype: "float32" });
  initWeights(m, 0.02, seed, vision ? { vision } : {});
  return new Map(m.namedParameters());
}

describe("initWeights", () => {
  test("default: every weight ~ N(0, 0.02^2), vision included; biases 0, norms 1", () => {
    const p = params();
    for (const k of ["model.vision_model.encoder.layers.0.mlp.fc1.weight", "model.vision_model.embeddings.patch_embedding.weight", "model.text_model.layers.0.self_attn.q_proj.weight"]) {
      near(stats(p.get(k)!).std, 0.02, 0.1, k);
    }
    assert.equal(stats(p.get("model.vision_model.encoder.layers.0.mlp.fc1.bias")!).max, 0);
    assert.equal(stats(p.get("model.vision_model.post_layernorm.weight")!).min, 1);
  });

  test("siglip: vision tower as SigLIP initializes itself, text model and connector unchanged", () => {
    const p = params("siglip");
    const hv = config.modelType === "idefics3" ? config.vision.hiddenSize : 0;
    const iv = config.modelType === "idefics3" ? config.vision.intermediateSize : 0;
    const patch = config.modelType === "idefics3" ? config.vision.patchSize : 0;
    // Xavier-uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), std a / sqrt(3)
    const fc1 = stats(p.get("model.vision_model.encoder.layers.0.mlp.fc1.weight")!);
    const a = Math.sqrt(6 / (hv + iv));
    near(fc1.std, a / Math.sqrt(3), 0.05, "fc1 std");
    assert.ok(fc1.max <= a && fc1.min >= -a && fc1.max > 0.95 * a, `fc1 range [${fc1.min}, ${fc1.max}] vs a=${a}`);
    near(stats(p.get("model.vision_model.encoder.layers.1.self_attn.q_proj.weight")!).std, Math.sqrt(2 / (2 * hv)), 0.05, "q_proj std");
    // MLP biases ~ N(0, 1e-12), attention biases 0
    const b = stats(p.get("model.vision_model.encoder.layers.0.mlp.fc2.bias")!);
    assert.ok(b.std > 1e-7 && b.std < 3e-6, `fc2 bias std ${b.std}`);
    assert.equal(stats(p.get("model.vision_model.encoder.layers.0.self_attn.k_proj.bias")!).max, 0);
    // patch convolution: LeCun normal, std 1 / sqrt(3 * p * p); position embedding std 1 / sqrt(hidden)
    near(stats(p.get("model.vision_model.embeddings.patch_embedding.weight")!).std, 1 / Math.sqrt(3 * patch * patch), 0.1, "patch conv std");
    near(stats(p.get("model.vision_model.embeddings.position_embedding.weight")!).std, 1 / Math.sqrt(hv), 0.1, "position embedding std");
    // layer norms (1, 0); the connector and the text model keep N(0, 0.02^2)
    assert.equal(stats(p.get("model.vision_model.encoder.layers.0.layer_norm1.weight")!).min, 1);
    near(stats(p.get("model.connector.modality_projection.proj.weight")!).std, 0.02, 0.1, "connector std");
    near(stats(p.get("model.text_model.layers.0.mlp.gate_proj.weight")!).std, 0.02, 0.1, "text std");
  });

  test("the same seed gives the same weights; another seed different ones", () => {
    const a = params("siglip", 3);
    const b = params("siglip", 3);
    const c = params("siglip", 4);
    const k = "model.vision_model.encoder.layers.0.mlp.fc1.weight";
    assert.deepEqual(a.get(k)!.toFlatArray(), b.get(k)!.toFlatArray());
    assert.notDeepEqual(a.get(k)!.toFlatArray(), c.get(k)!.toFlatArray());
  });
});
