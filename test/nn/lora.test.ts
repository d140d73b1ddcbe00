import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { loadAdapter, saveAdapter } from "../../src/models/peft.js";
import { adapterParameters, applyLora, loraModules, mergeAdapters, mergeAndUnload, unmergeAdapters, withAdaptersDisabled } from "../../src/nn/lora.js";
import type { Module } from "../../src/nn/module.js";
import { noGrad, randn, type Tensor, tensor, tidy } from "../../src/torch/index.js";
import { seededModel, tempDir, testConfig } from "../models/helpers.js";

const ids = () => tensor([[1, 5, 9, 3, 7, 11]], { dtype: "int64" });
type Fwd = { forward(i: { inputIds: Tensor }): { logits: Tensor } };
const logits = (m: Module) => tidy(() => (m as unknown as Fwd).forward({ inputIds: ids() }).logits.toFlatArray());
const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

function randomizeB(m: Module, seed = 1): void {
  noGrad(() => {
    loraModules(m).forEach(([, l], i) => {
      const r = randn(l.lora_B.weight.shape, { generator: undefined }).mul(0.05 * (1 + ((seed + i) % 3)));
      l.lora_B.weight.copy_(r);
      r.dispose();
    });
  });
}

test("a fresh adapter (B = 0) leaves the outputs exactly unchanged; only adapters train", () => {
  const m = seededModel(testConfig("llama"), 3);
  const base = logits(m);
  const { paths } = applyLora(m, { rank: 4, alpha: 8 });
  assert.equal(paths.length, 2 * 7, "7 projections in each of 2 layers");
  assert.deepEqual(logits(m), base);
  const trainable = m.parameters().filter((t) => t.requiresGrad);
  assert.equal(trainable.length, 2 * paths.length);
  assert.deepEqual(new Set(trainable), new Set(adapterParameters(m)));
  m.dispose();
});

test("default targets skip the vision tower and connector; includeVision adds them", () => {
  const a = seededModel(testConfig("idefics3"), 0);
  const { paths } = applyLora(a, {});
  assert.ok(paths.length > 0 && paths.every((p) => p.includes("text_model")), paths.join(","));
  const b = seededModel(testConfig("idefics3"), 0);
  const withVision = applyLora(b, { includeVision: true, includeConnector: true }).paths;
  assert.ok(withVision.some((p) => p.includes("vision_model") && p.endsWith("fc1")));
  assert.ok(withVision.some((p) => p.endsWith("modality_projection.proj")));
  a.dispose();
  b.dispose();
});

test("adapters off gives the base model; merged equals unmerged; unmerge restores the weights", () => {
  const m = seededModel(testConfig("llama"), 4);
  const base = logits(m);
  applyLora(m, { rank: 4, alpha: 16, dropout: 0 });
  randomizeB(m);
  const adapted = logits(m);
  assert.ok(maxDiff(adapted, base) > 1e-3, "a non-zero B changes the outputs");
  assert.deepEqual(withAdaptersDisabled(m, () => logits(m)), base);
  assert.deepEqual(logits(m), adapted, "adapters are back on after withAdaptersDisabled");
  const w0 = loraModules(m)[0][1].weight.toFlatArray();
  mergeAdapters(m);
  assert.ok(maxDiff(logits(m), adapted) < 1e-4, `merged vs unmerged ${maxDiff(logits(m), adapted)}`);
  unmergeAdapters(m);
  assert.ok(maxDiff(loraModules(m)[0][1].weight.toFlatArray(), w0) < 1e-6);
  mergeAndUnload(m);
  assert.equal(loraModules(m).length, 0);
  assert.ok(maxDiff(logits(m), adapted) < 1e-4);
  assert.ok([...m.stateDict().keys()].every((k) => !k.includes("lora_")));
  m.dispose();
});

test("gradients reach the adapter", () => {
  const m = seededModel(testConfig("llama"), 5);
  applyLora(m, { rank: 2, dropout: 0 });
  m.train();
  tidy(() => {
    const out = (m as unknown as Fwd).forward({ inputIds: ids() }).logits;
    out.square().mean().backward();
  });
  const [, l] = loraModules(m)[0];
  const g = l.lora_B.weight.grad;
  assert.ok(g && (g.abs().sum().item() as number) > 0, "lora_B gets a gradient");
  assert.equal(l.weight.grad, null, "the base weight is frozen");
  m.dispose();
});

test("PEFT format: keys, config, round trip, and errors naming the key", () => {
  const dir = tempDir("lora");
  const m = seededModel(testConfig("idefics3"), 6);
  const { paths } = applyLora(m, { rank: 4, alpha: 8, dropout: 0.1 });
  randomizeB(m, 2);
  const adapted = logits(m);
  const out = path.join(dir, "adapter");
  saveAdapter(m, out, { baseModel: "tiny" });
  const cfg = JSON.parse(fs.readFileSync(path.join(out, "adapter_config.json"), "utf8"));
  assert.equal(cfg.peft_type, "LORA");
  assert.equal(cfg.r, 4);
  assert.equal(cfg.lora_alpha, 8);
  assert.equal(cfg.lora_dropout, 0.1);
  const re = new RegExp(`^(?:${cfg.target_modules})$`);
  for (const [p] of m.namedModules()) assert.equal(re.test(p), paths.includes(p), `target_modules regex on ${p}`);

  const fresh = seededModel(testConfig("idefics3"), 6);
  loadAdapter(fresh, out);
  assert.deepEqual(logits(fresh), adapted);
  fresh.dispose();

  // A key naming a module the model lacks.
  const bad = path.join(dir, "bad");
  fs.mkdirSync(bad);
  fs.copyFileSync(path.join(out, "adapter_config.json"), path.join(bad, "adapter_config.json"));
  const raw = fs.readFileSync(path.join(out, "adapter_model.safetensors"));
  const headerLen = Number(raw.readBigUInt64LE(0));
  const header = raw.subarray(8, 8 + headerLen).toString("utf8").replace("layers.0.self_attn.q_proj.lora_A", "layers.0.self_attn.qq_proj.lora_A");
  const hb = Buffer.from(header, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length));
  fs.writeFileSync(path.join(bad, "adapter_model.safetensors"), Buffer.concat([len, hb, raw.subarray(8 + headerLen)]));
  const other = seededModel(testConfig("idefics3"), 6);
  assert.throws(() => loadAdapter(other, bad), /qq_proj/);
  assert.equal(loraModules(other).length, 0, "a failed load adds nothing");
  other.dispose();
  m.dispose();
});
