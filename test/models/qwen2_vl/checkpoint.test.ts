// Qwen checkpoint I/O: saving writes transformers 5.18's key layout and
// config.json (the same keys and config as the fixture save_pretrained wrote),
// save -> load is bit-exact, the module-path layout loads too, strict loading
// names missing / unexpected / mis-shaped / doubly mapped keys, and bf16 runs.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";

import { loadSafetensors, SafetensorsFolder, saveSafetensors } from "../../../src/io/safetensors.js";
import {
  loadQwenPretrained,
  qwenKeyToModulePath,
  qwenModulePathToKey,
  saveQwenPretrained,
} from "../../../src/models/qwen2_vl/index.js";
import { noGrad, type Tensor, tensor, tidy } from "../../../src/torch/index.js";
import { FAMILIES, familyTensors, MODEL_DIRS, pixelValuesOf, processorTensors, reference } from "./fixtures.js";

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-grpo-qwen-ckpt-"));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

function copyFolder(src: string, dst: string): void {
  fs.mkdirSync(dst, { recursive: true });
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dst, f));
}

test("key layouts: hub keys and module paths map onto each other", () => {
  const pairs: [string, string][] = [
    ["visual.blocks.0.attn.qkv.weight", "model.visual.blocks.0.attn.qkv.weight"],
    ["model.layers.1.self_attn.q_proj.bias", "model.language_model.layers.1.self_attn.q_proj.bias"],
    ["model.embed_tokens.weight", "model.language_model.embed_tokens.weight"],
    ["model.norm.weight", "model.language_model.norm.weight"],
    ["lm_head.weight", "lm_head.weight"],
  ];
  for (const [stored, module] of pairs) {
    assert.equal(qwenKeyToModulePath(stored), module);
    assert.equal(qwenKeyToModulePath(module), module, "module paths map to themselves");
    assert.equal(qwenModulePathToKey(module), stored);
  }
});

for (const family of FAMILIES) {
  test(`${family}: save writes transformers' keys and config; save -> load is bit-exact`, async () => {
    const { model } = await loadQwenPretrained(MODEL_DIRS[family]);
    const out = path.join(TMP, `${family}-saved`);
    try {
      const { files } = await saveQwenPretrained(model, out, { copyFilesFrom: MODEL_DIRS[family], copyFileNames: ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "processor_config.json"] });
      assert.deepEqual(files, ["chat_template.jinja", "config.json", "generation_config.json", "model.safetensors", "processor_config.json", "tokenizer.json", "tokenizer_config.json"]);
      const theirs = SafetensorsFolder.open(MODEL_DIRS[family]);
      const ours = SafetensorsFolder.open(out);
      assert.deepEqual([...ours.names].sort(), [...theirs.names].sort(), "the same tensor keys as transformers' save_pretrained");
      const cfgTheirs = JSON.parse(fs.readFileSync(path.join(MODEL_DIRS[family], "config.json"), "utf8"));
      const cfgOurs = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8"));
      assert.deepEqual(cfgOurs, cfgTheirs, "config.json as transformers wrote it");
      // Bit-exact: every stored tensor equal to the original file's.
      const a = loadSafetensors(path.join(MODEL_DIRS[family], "model.safetensors"));
      const b = loadSafetensors(path.join(out, "model.safetensors"));
      try {
        for (const [k, t] of a) assert.equal(tidy(() => t.eq(b.get(k)!).all().item()), true, `${k} differs after save`);
      } finally {
        for (const t of [...a.values(), ...b.values()]) t.dispose();
      }
      const { model: again } = await loadQwenPretrained(out);
      try {
        for (const [k, t] of model.checkpointParameters()) assert.equal(tidy(() => t.eq(again.getParameter(k)).all().item()), true, `${k} differs after load`);
        assert.equal(again.tiedWordEmbeddings, family === "qwen2_5_vl");
        if (again.tiedWordEmbeddings) assert.equal(again.lm_head.weight, again.model.language_model.embed_tokens.weight);
      } finally {
        again.dispose();
      }
    } finally {
      model.dispose();
    }
  });
}

test("a checkpoint stored under module paths (model.visual.*, model.language_model.*) loads to the same weights", async () => {
  const src = MODEL_DIRS.qwen2_vl;
  const dir = path.join(TMP, "module-paths");
  copyFolder(src, dir);
  const stored = loadSafetensors(path.join(src, "model.safetensors"));
  const renamed = new Map([...stored].map(([k, t]) => [qwenKeyToModulePath(k), t] as [string, Tensor]));
  saveSafetensors(path.join(dir, "model.safetensors"), renamed, { format: "pt" });
  const { model: a } = await loadQwenPretrained(src);
  const { model: b } = await loadQwenPretrained(dir);
  try {
    for (const [k, t] of a.checkpointParameters()) assert.equal(tidy(() => t.eq(b.getParameter(k)).all().item()), true, k);
  } finally {
    a.dispose();
    b.dispose();
    for (const t of stored.values()) t.dispose();
  }
});

test("strict loading names missing, unexpected, mis-shaped and doubly stored keys", async () => {
  const src = MODEL_DIRS.qwen2_vl;
  const variant = async (name: string, edit: (m: Map<string, Tensor>) => void): Promise<string> => {
    const dir = path.join(TMP, name);
    copyFolder(src, dir);
    const m = loadSafetensors(path.join(src, "model.safetensors"));
    edit(m);
    saveSafetensors(path.join(dir, "model.safetensors"), m, { format: "pt" });
    for (const t of m.values()) t.dispose();
    return dir;
  };
  const missing = await variant("missing", (m) => m.delete("visual.merger.mlp.2.bias"));
  await assert.rejects(loadQwenPretrained(missing), /missing.*model\.visual\.merger\.mlp\.2\.bias/s);
  const extra = await variant("extra", (m) => m.set("visual.blocks.9.attn.qkv.weight", tensor([1, 2])));
  await assert.rejects(loadQwenPretrained(extra), /unexpected.*model\.visual\.blocks\.9\.attn\.qkv\.weight/s);
  const shape = await variant("shape", (m) => m.set("model.layers.0.self_attn.q_proj.bias", tensor([1, 2, 3])));
  await assert.rejects(loadQwenPretrained(shape), /model\.language_model\.layers\.0\.self_attn\.q_proj\.bias.*\[3\].*\[32\]|model\.language_model\.layers\.0\.self_attn\.q_proj\.bias.*\[32\].*\[3\]/s);
  const twice = await variant("twice", (m) => m.set("model.language_model.norm.weight", m.get("model.norm.weight")!.clone()));
  await assert.rejects(loadQwenPretrained(twice), /tensors '(model\.norm\.weight|model\.language_model\.norm\.weight)' and '(model\.norm\.weight|model\.language_model\.norm\.weight)' both load into 'model\.language_model\.norm\.weight'/);
  const badCfg = path.join(TMP, "badcfg");
  copyFolder(src, badCfg);
  const cfg = JSON.parse(fs.readFileSync(path.join(src, "config.json"), "utf8"));
  cfg.text_config.use_sliding_window = true;
  fs.writeFileSync(path.join(badCfg, "config.json"), JSON.stringify(cfg));
  await assert.rejects(loadQwenPretrained(badCfg), /badcfg\/config\.json: text_config: use_sliding_window true is not supported/);
});

for (const family of FAMILIES) {
  test(`${family}: bfloat16 weights run; logits close to transformers' float32 (bf16 tolerance)`, async () => {
    const { model } = await loadQwenPretrained(MODEL_DIRS[family], { dtype: "bfloat16" });
    const expected = familyTensors(family);
    const proc = processorTensors();
    try {
      assert.equal(model.lm_head.weight.dtype, "bfloat16");
      const c = reference().families[family].cases.one_image;
      const { worst, scale } = noGrad(() =>
        tidy(() => {
          const { logits } = model.forward({
            inputIds: tensor(c.input_ids.map((r) => r.map(BigInt))),
            pixelValues: pixelValuesOf(c.images!, proc),
            imageGridThw: tensor(c.image_grid_thw!.map((r) => r.map(BigInt))),
          });
          assert.equal(logits.dtype, "float32");
          const e = expected.get("one_image.logits")!;
          return { worst: logits.sub(e).abs().max().item() as number, scale: e.abs().max().item() as number };
        }),
      );
      console.log(`# ${family} bf16: max |logit diff| vs float32 reference ${worst.toFixed(4)} (max |logit| ${scale.toFixed(3)})`);
      assert.ok(Number.isFinite(worst) && worst < 0.1 * scale, `bf16 logits off by ${worst} (scale ${scale})`);
      // And saving from bf16 writes bf16 with dtype recorded.
      const out = path.join(TMP, `${family}-bf16`);
      await saveQwenPretrained(model, out);
      assert.equal(JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8")).dtype, "bfloat16");
      assert.equal(SafetensorsFolder.open(out).fileOf("model.norm.weight").entry("model.norm.weight").dtype, "BF16");
      const { model: auto } = await loadQwenPretrained(out, { dtype: "auto" });
      assert.equal(auto.lm_head.weight.dtype, "bfloat16");
      auto.dispose();
    } finally {
      model.dispose();
      for (const t of [...expected.values(), ...proc.values()]) t.dispose();
    }
  });
}
