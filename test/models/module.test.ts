// Module tree behaviour on the real model classes: HF key paths, module
// replacement (what LoRA relies on), strict state-dict loading errors,
// dtype conversion with tied weights, and release of every tensor.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Idefics3ForConditionalGeneration, LlamaForCausalLM } from "../../src/models/index.js";
import { Linear, Module } from "../../src/nn/index.js";
import { liveTensors, noGrad, randn, type Tensor, tensor, tidy, zeros } from "../../src/torch/index.js";
import { assertClose } from "../helpers/close.js";
import { seededModel, testConfig } from "./helpers.js";

describe("Module: paths and traversal", () => {
  test("Idefics3 parameter paths are the HF checkpoint keys", () => {
    const m = seededModel(testConfig("idefics3"));
    const keys = m.namedParameters().map(([k]) => k);
    for (const k of [
      "model.vision_model.embeddings.patch_embedding.weight",
      "model.vision_model.embeddings.patch_embedding.bias",
      "model.vision_model.embeddings.position_embedding.weight",
      "model.vision_model.encoder.layers.1.self_attn.out_proj.bias",
      "model.vision_model.encoder.layers.0.mlp.fc2.weight",
      "model.vision_model.encoder.layers.0.layer_norm2.bias",
      "model.vision_model.post_layernorm.weight",
      "model.connector.modality_projection.proj.weight",
      "model.text_model.embed_tokens.weight",
      "model.text_model.layers.1.self_attn.k_proj.weight",
      "model.text_model.layers.0.mlp.gate_proj.weight",
      "model.text_model.layers.0.post_attention_layernorm.weight",
      "model.text_model.norm.weight",
      "lm_head.weight",
    ]) {
      assert.ok(keys.includes(k), `missing ${k}`);
    }
    // Llama projections have no bias; the connector projection neither.
    assert.ok(!keys.some((k) => /text_model.*proj\.bias|modality_projection\.proj\.bias/.test(k)));
    // 2 vision layers x 16 + embeddings 3 + post 2 + connector 1 + text (1 + 2 x 9 + 1) + lm_head 1
    assert.equal(keys.length, 32 + 3 + 2 + 1 + 20 + 1);
    m.dispose();
  });

  test("tied Llama lists the shared weight once, under model.embed_tokens.weight", () => {
    const m = seededModel(testConfig("llama"));
    assert.ok(m instanceof LlamaForCausalLM);
    const keys = m.namedParameters().map(([k]) => k);
    assert.ok(keys.includes("model.embed_tokens.weight"));
    assert.ok(!keys.includes("lm_head.weight"));
    assert.ok(m.allParameterPaths().includes("lm_head.weight"));
    assert.ok(m.getParameter("lm_head.weight").isSameTensor(m.getParameter("model.embed_tokens.weight")));
    m.dispose();
  });

  test("getModule / setModule: a replaced Linear is the one forward calls", () => {
    const m = seededModel(testConfig("llama")) as LlamaForCausalLM;
    const path = "model.layers.1.self_attn.q_proj";
    const orig = m.getModule(path) as Linear;
    let calls = 0;
    class Counting extends Linear {
      override forward(x: Tensor): Tensor {
        calls++;
        return orig.forward(x);
      }
    }
    const wrapper = new Counting(orig.inFeatures, orig.outFeatures, { bias: false, weight: orig.weight });
    const ids = tensor([[1, 2, 3]], { dtype: "int64" });
    const before = noGrad(() => m.forward({ inputIds: ids }).logits);
    m.setModule(path, wrapper);
    assert.equal(m.getModule(path), wrapper);
    assert.equal(m.model.layers.at(1).self_attn.q_proj, wrapper);
    const after = noGrad(() => m.forward({ inputIds: ids }).logits);
    assert.equal(calls, 1);
    assertClose(after, before, { atol: 0, rtol: 0 });
    assert.throws(() => m.getModule("model.layers.7"), /model\.layers \(ModuleList\) has no child '7'/);
    assert.throws(() => m.setModule("model.nope", wrapper), /no child 'nope'/);
    ids.dispose();
    before.dispose();
    after.dispose();
    m.dispose();
  });

  test("train / eval / requiresGrad_ reach every module and parameter", () => {
    const m = seededModel(testConfig("idefics3"));
    assert.ok(m.namedModules().every(([, x]) => !x.training));
    m.train();
    assert.ok(m.namedModules().every(([, x]) => x.training));
    assert.ok(m.parameters().every((p) => p.requiresGrad));
    m.requiresGrad_(false);
    assert.ok(m.parameters().every((p) => !p.requiresGrad));
    m.dispose();
  });
});

describe("Module: loadStateDict", () => {
  test("copies every tensor in place (same tensors afterwards, new values)", () => {
    const a = seededModel(testConfig("idefics3"), 1);
    const b = seededModel(testConfig("idefics3"), 2);
    const before = b.getParameter("lm_head.weight");
    const res = b.loadStateDict(a.stateDict());
    assert.equal(res.loaded.length, a.namedParameters().length);
    assert.equal(b.getParameter("lm_head.weight"), before);
    for (const [k, t] of a.stateDict()) assertClose(b.getParameter(k), t, { atol: 0, rtol: 0 }, k);
    a.dispose();
    b.dispose();
  });

  test("strict: a renamed key is reported as missing and unexpected, by name", () => {
    const a = seededModel(testConfig("llama"), 1);
    const sd = new Map(a.stateDict());
    const t = sd.get("model.layers.0.mlp.up_proj.weight")!;
    sd.delete("model.layers.0.mlp.up_proj.weight");
    sd.set("model.layers.0.mlp.upproj.weight", t);
    assert.throws(
      () => a.loadStateDict(sd),
      (e: Error) =>
        /missing keys: 'model\.layers\.0\.mlp\.up_proj\.weight'/.test(e.message) && /unexpected keys: 'model\.layers\.0\.mlp\.upproj\.weight'/.test(e.message),
    );
    // Non-strict loads the rest and reports the two keys.
    const res = a.loadStateDict(sd, { strict: false });
    assert.deepEqual(res.missing, ["model.layers.0.mlp.up_proj.weight"]);
    assert.deepEqual(res.unexpected, ["model.layers.0.mlp.upproj.weight"]);
    a.dispose();
  });

  test("strict or not, a mis-shaped key is an error naming both shapes; nothing is copied", () => {
    const a = seededModel(testConfig("llama"), 1);
    const sd = new Map(a.stateDict());
    const bad = zeros([64, 65]);
    sd.set("model.layers.1.self_attn.o_proj.weight", bad);
    const keep = a.getParameter("model.norm.weight").toFlatArray();
    for (const strict of [true, false]) {
      assert.throws(() => a.loadStateDict(sd, { strict }), /mis-shaped keys: 'model\.layers\.1\.self_attn\.o_proj\.weight': expected \[64, 64\], got \[64, 65\]/);
    }
    assert.deepEqual(a.getParameter("model.norm.weight").toFlatArray(), keep);
    bad.dispose();
    a.dispose();
  });
});

describe("Module: dtype and memory", () => {
  test("to({dtype: bfloat16}) keeps the tie and requiresGrad; logits stay float32 and close", () => {
    const m = seededModel(testConfig("llama"), 3) as LlamaForCausalLM;
    const ids = tensor([[1, 5, 7, 9, 11]], { dtype: "int64" });
    const ref = noGrad(() => m.forward({ inputIds: ids }).logits);
    m.to({ dtype: "bfloat16" });
    assert.ok(m.parameters().every((p) => p.dtype === "bfloat16" && p.requiresGrad));
    assert.ok(m.lm_head.weight.isSameTensor(m.model.embed_tokens.weight));
    const bf = noGrad(() => m.forward({ inputIds: ids }).logits);
    assert.equal(bf.dtype, "float32");
    assertClose(bf, ref, { atol: 0.05, rtol: 0.05 });
    for (const t of [ids, ref, bf]) t.dispose();
    m.dispose();
  });

  test("forward releases its intermediates and dispose frees every parameter", () => {
    const warm = seededModel(testConfig("idefics3"));
    noGrad(() => tidy(() => warm.forward({ inputIds: tensor([[1, 2]], { dtype: "int64" }) })));
    warm.dispose();
    const base = liveTensors();
    const m: Idefics3ForConditionalGeneration = seededModel(testConfig("idefics3")) as Idefics3ForConditionalGeneration;
    const afterBuild = liveTensors();
    assert.equal(afterBuild - base, m.namedParameters().length);
    tidy(() => {
      const ids = tensor([[1, 90, 90, 90, 90, 3]], { dtype: "int64" });
      const out = m.forward({ inputIds: ids, pixelValues: randn([1, 3, 32, 32]) });
      out.logits.sum().backward();
    });
    // one rotary inv_freq table per device is cached by the model
    assert.equal(liveTensors() - afterBuild, 1);
    m.dispose();
    assert.equal(liveTensors(), base);
  });

  test("a Module subclass registers parameters and children by name", () => {
    class Pair extends Module {
      a: Linear;
      b: Linear;
      constructor() {
        super();
        this.a = this.addModule("a", new Linear(2, 3));
        this.b = this.addModule("b", new Linear(3, 1, { bias: false }));
        this.addParameter("scale", zeros([1]));
      }
    }
    const p = new Pair();
    assert.deepEqual(
      p.namedParameters("root").map(([k, t]) => `${k}:${t.shape.join("x")}`),
      ["root.scale:1", "root.a.weight:3x2", "root.a.bias:3", "root.b.weight:1x3"],
    );
    assert.equal(p.numParameters(), 1 + 6 + 3 + 3);
    p.dispose();
  });
});
