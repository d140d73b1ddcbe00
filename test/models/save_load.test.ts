// Checkpoint folders: save -> load is bit-exact (single file and shards),
// the files are laid out as transformers writes them, tied weights are stored
// once, and strict loading names every bad key before reading any data.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";

import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from "../../src/io/safetensors.js";
import { checkpointParameters, Idefics3ForConditionalGeneration, LlamaForCausalLM, loadPretrained, loadWeights, parseSize, readConfig, savePretrained } from "../../src/models/index.js";
import { Linear } from "../../src/nn/index.js";
import { dispose, type Tensor, zeros } from "../../src/torch/index.js";
import { seededModel, tempDir, testConfig } from "./helpers.js";

const dir = tempDir("save-load");

function assertSameTensors(a: Map<string, Tensor>, b: Map<string, Tensor>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, t] of a) {
    const u = b.get(k)!;
    assert.equal(u.dtype, t.dtype, k);
    assert.deepEqual(u.shape, t.shape, k);
    assert.ok(Buffer.from(u.toBytes()).equals(Buffer.from(t.toBytes())), `${k}: bytes differ`);
  }
}

describe("savePretrained / loadPretrained", () => {
  test("Idefics3, single file: every tensor back bit for bit; files and config as transformers writes them", async () => {
    const m = seededModel(testConfig("idefics3"), 5);
    const out = path.join(dir, "single");
    const { files } = await savePretrained(m, out);
    assert.deepEqual(files, ["config.json", "generation_config.json", "model.safetensors"]);
    const header = readSafetensorsHeader(path.join(out, "model.safetensors"));
    assert.deepEqual(header.metadata, { format: "pt" });
    assert.ok(header.entries.has("lm_head.weight"), "untied lm_head is stored");
    const cfg = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8"));
    assert.equal(cfg.model_type, "idefics3");
    assert.deepEqual(cfg.architectures, ["Idefics3ForConditionalGeneration"]);
    assert.equal(cfg.torch_dtype, "float32");
    assert.equal(cfg.text_config.model_type, "llama");
    assert.equal(cfg.vision_config.patch_size, 8);
    const { model, config } = await loadPretrained(out);
    assert.ok(model instanceof Idefics3ForConditionalGeneration);
    assert.equal(config.modelType, "idefics3");
    assertSameTensors(m.stateDict(), model.stateDict());
    m.dispose();
    model.dispose();
  });

  test("sharded (small maxShardSize): HF shard names, index with total_size, bit-exact reload", async () => {
    const m = seededModel(testConfig("idefics3"), 6);
    const out = path.join(dir, "sharded");
    const { files } = await savePretrained(m, out, { maxShardSize: "100KB" });
    const shards = files.filter((f) => f.endsWith(".safetensors"));
    assert.ok(shards.length > 2, `${shards.length} shards`);
    shards.forEach((f, i) => assert.equal(f, `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`));
    const index = JSON.parse(fs.readFileSync(path.join(out, "model.safetensors.index.json"), "utf8"));
    const total = m.parameters().reduce((s, t) => s + t.numel * 4, 0);
    assert.equal(index.metadata.total_size, total);
    assert.equal(Object.keys(index.weight_map).length, m.namedParameters().length);
    for (const f of shards) assert.ok(fs.statSync(path.join(out, f)).size < 100_000 + 4096 || readSafetensorsHeader(path.join(out, f)).entries.size === 1);
    const { model } = await loadPretrained(out);
    assertSameTensors(m.stateDict(), model.stateDict());
    m.dispose();
    model.dispose();
  });

  test("tied Llama: lm_head.weight is not stored; the loaded model is tied again", async () => {
    const m = seededModel(testConfig("llama"), 7);
    const out = path.join(dir, "tied");
    await savePretrained(m, out);
    const stored = readSafetensorsHeader(path.join(out, "model.safetensors"));
    assert.ok(!stored.entries.has("lm_head.weight"));
    const { model } = await loadPretrained(out);
    assert.ok(model instanceof LlamaForCausalLM);
    assert.ok(model.lm_head.weight.isSameTensor(model.model.embed_tokens.weight));
    assertSameTensors(m.stateDict(), model.stateDict());
    m.dispose();
    model.dispose();
  });

  test("bfloat16 save records torch_dtype; dtype 'auto' loads bfloat16, float32 load widens exactly", async () => {
    const m = seededModel(testConfig("llama"), 8);
    const out = path.join(dir, "bf16");
    await savePretrained(m, out, { dtype: "bfloat16" });
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8")).torch_dtype, "bfloat16");
    const auto = await loadPretrained(out, { dtype: "auto" });
    const f32 = await loadPretrained(out);
    assert.ok(auto.model.parameters().every((p) => p.dtype === "bfloat16"));
    assert.ok(f32.model.parameters().every((p) => p.dtype === "float32"));
    for (const [k, t] of auto.model.stateDict()) {
      assert.deepEqual(f32.model.getParameter(k).toFlatArray(), t.toFlatArray(), k);
    }
    // the model's own parameters were not converted by saving
    assert.ok(m.parameters().every((p) => p.dtype === "float32"));
    m.dispose();
    auto.model.dispose();
    f32.model.dispose();
  });

  test("copyFilesFrom brings tokenizer / processor / generation files along; the folder is replaced", async () => {
    const src = path.join(dir, "tok-src");
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, "tokenizer.json"), "{}");
    fs.writeFileSync(path.join(src, "preprocessor_config.json"), "{\"a\": 1}");
    fs.writeFileSync(path.join(src, "generation_config.json"), "{\"eos_token_id\": [2, 7]}");
    fs.writeFileSync(path.join(src, "unrelated.txt"), "x");
    const out = path.join(dir, "with-files");
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, "stale.bin"), "old");
    const m = seededModel(testConfig("llama"), 9);
    const { files } = await savePretrained(m, out, { copyFilesFrom: src });
    assert.deepEqual(files, ["config.json", "generation_config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json"]);
    assert.deepEqual(fs.readdirSync(out).sort(), files);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, "generation_config.json"), "utf8")), { eos_token_id: [2, 7] });
    m.dispose();
  });

  test("modules added to the tree (an adapter around a Linear) are not saved; loadWeights fills the base keys", async () => {
    const m = seededModel(testConfig("llama"), 13) as LlamaForCausalLM;
    const path1 = "model.layers.0.self_attn.v_proj";
    const base = m.getModule(path1) as Linear;
    class Adapter extends Linear {
      extra: Linear;
      constructor() {
        super(base.inFeatures, base.outFeatures, { bias: false, weight: base.weight });
        this.extra = this.addModule("lora_A", new Linear(base.inFeatures, 2, { bias: false }));
      }
    }
    const wrapped = new Adapter();
    m.setModule(path1, wrapped);
    assert.ok(m.namedParameters().some(([k]) => k === `${path1}.lora_A.weight`));
    const out = path.join(dir, "adapted");
    await savePretrained(m, out);
    const stored = readSafetensorsHeader(path.join(out, "model.safetensors"));
    assert.ok(![...stored.entries.keys()].some((k) => k.includes("lora_A")));
    assert.ok(stored.entries.has(`${path1}.weight`));
    const other = seededModel(testConfig("llama"), 14) as LlamaForCausalLM;
    other.setModule(path1, new Adapter());
    loadWeights(other, out);
    const baseKeys = [...checkpointParameters(m).keys()];
    assert.ok(!baseKeys.some((k) => k.includes("lora_A")));
    assertSameTensors(checkpointParameters(m), new Map(baseKeys.map((k) => [k, other.getParameter(k)])));
    m.dispose();
    other.dispose();
  });

  test("saved config.json resolves to the same config", async () => {
    const m = seededModel(testConfig("idefics3"), 10);
    const out = path.join(dir, "cfg");
    await savePretrained(m, out);
    const back = readConfig(out);
    const strip = (c: object) => JSON.parse(JSON.stringify(c, (k, v) => (k === "raw" ? undefined : v)));
    assert.deepEqual(strip(back), strip(m.config));
    m.dispose();
  });

  test("maxShardSize strings", () => {
    assert.equal(parseSize("5GB"), 5e9);
    assert.equal(parseSize("2GiB"), 2 * 1024 ** 3);
    assert.equal(parseSize("500MB"), 5e8);
    assert.equal(parseSize(1234), 1234);
    assert.throws(() => parseSize("lots"), /cannot read 'lots'/);
  });
});

describe("strict loading from a folder", () => {
  async function corrupt(name: string, edit: (t: Map<string, Tensor>) => void): Promise<string> {
    const m = seededModel(testConfig("llama"), 11);
    const out = path.join(dir, name);
    await savePretrained(m, out);
    m.dispose();
    const file = path.join(out, "model.safetensors");
    const t = loadSafetensors(file);
    edit(t);
    saveSafetensors(file, t, { format: "pt" });
    dispose(t);
    return out;
  }

  test("a renamed key: the error names the missing and the unexpected key", async () => {
    const out = await corrupt("renamed", (t) => {
      const x = t.get("model.layers.1.input_layernorm.weight")!;
      t.delete("model.layers.1.input_layernorm.weight");
      t.set("model.layers.1.input_layer_norm.weight", x);
    });
    await assert.rejects(loadPretrained(out), (e: Error) => {
      assert.match(e.message, /checkpoint .*renamed: missing keys: 'model\.layers\.1\.input_layernorm\.weight'; unexpected keys: 'model\.layers\.1\.input_layer_norm\.weight'/);
      return true;
    });
  });

  test("a mis-shaped key: the error names it with both shapes", async () => {
    const out = await corrupt("misshaped", (t) => {
      t.get("model.norm.weight")!.dispose();
      t.set("model.norm.weight", zeros([63]));
    });
    await assert.rejects(loadPretrained(out), /mis-shaped keys: 'model\.norm\.weight': expected \[64\], got \[63\]/);
  });

  test("an untied model without lm_head.weight in the checkpoint is an error naming it", async () => {
    const m = seededModel(testConfig("idefics3"), 12);
    const out = path.join(dir, "no-head");
    await savePretrained(m, out);
    m.dispose();
    const file = path.join(out, "model.safetensors");
    const t = loadSafetensors(file);
    t.get("lm_head.weight")!.dispose();
    t.delete("lm_head.weight");
    saveSafetensors(file, t, { format: "pt" });
    dispose(t);
    await assert.rejects(loadPretrained(out), /missing keys: 'lm_head\.weight'/);
  });

  test("a folder without config.json, or of an unsupported model_type", async () => {
    await assert.rejects(loadPretrained(path.join(dir, "nowhere")), /has no config\.json/);
    const out = path.join(dir, "gpt2");
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, "config.json"), JSON.stringify({ model_type: "gpt2", architectures: ["GPT2LMHeadModel"] }));
    await assert.rejects(loadPretrained(out), /unsupported model \(model_type "gpt2".*supported: idefics3/);
  });
});
