// Word-embedding tying as transformers 5.x decides it (PreTrainedModel's
// tie_weights during from_pretrained; judged by transformers itself in
// test/peers/hf_to_ours.test.ts):
//   - Idefics3 reads the top-level tie_word_embeddings only; text_config's
//     flag does not tie (Qwen2-VL's config forwards a true text_config flag);
//   - a config that ties but a checkpoint storing an lm_head.weight different
//     from the embeddings loads untied, with a warning; an equal stored copy
//     ties as usual;
//   - a folder loaded untied saves as untied (config false, both tensors), so
//     it round-trips without the warning.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";

import { loadSafetensors, saveSafetensors } from "../../src/io/safetensors.js";
import { loadPretrained, resolveIdefics3Config, savePretrained } from "../../src/models/index.js";
import { type Tensor, tidy } from "../../src/torch/index.js";
import { seededModel, tempDir, testConfig } from "./helpers.js";
import { MODEL_DIRS } from "./qwen2_vl/fixtures.js";

const dir = tempDir("tie-rule");

function editConfig(folder: string, edit: (c: Record<string, unknown>) => void): void {
  const file = path.join(folder, "config.json");
  const c = JSON.parse(fs.readFileSync(file, "utf8"));
  edit(c);
  fs.writeFileSync(file, JSON.stringify(c, null, 2));
}

const sameValues = (a: Tensor, b: Tensor) => tidy(() => a.eq(b).all().item() as boolean);
type WithHead = { lm_head: { weight: Tensor } };

/** An untied Idefics3 folder (lm_head stored, different from the embeddings). */
async function untiedIdefics3(name: string): Promise<string> {
  const m = seededModel(testConfig("idefics3"), 11);
  const out = path.join(dir, name);
  await savePretrained(m, out);
  m.dispose();
  return out;
}

describe("tie_word_embeddings as transformers 5.x reads it", () => {
  test("Idefics3: only the top-level flag ties; text_config's alone does not", () => {
    const base = { vision_config: { image_size: 32, patch_size: 8 } };
    assert.equal(resolveIdefics3Config({ ...base, text_config: { tie_word_embeddings: true } }).tieWordEmbeddings, false);
    assert.equal(resolveIdefics3Config({ ...base, tie_word_embeddings: true, text_config: { tie_word_embeddings: false } }).tieWordEmbeddings, true);
    assert.equal(resolveIdefics3Config(base).tieWordEmbeddings, false);
  });

  test("Idefics3, text_config ties but the top level is absent: lm_head is loaded from the file, untied, no warning", async () => {
    const out = await untiedIdefics3("text-config-tie");
    editConfig(out, (c) => {
      delete c.tie_word_embeddings;
      (c.text_config as Record<string, unknown>).tie_word_embeddings = true;
    });
    const stored = loadSafetensors(path.join(out, "model.safetensors"));
    const warnings: string[] = [];
    const { model } = await loadPretrained(out, { onWarning: (m) => warnings.push(m) });
    try {
      const head = (model as unknown as WithHead).lm_head.weight;
      assert.ok(sameValues(head, stored.get("lm_head.weight")!), "lm_head holds the stored lm_head");
      assert.deepEqual(warnings, []);
    } finally {
      model.dispose();
      for (const t of stored.values()) t.dispose();
    }
  });

  test("config ties but the stored lm_head differs: untied with a warning; the save round-trips as untied, without it", async () => {
    const out = await untiedIdefics3("stored-differs");
    editConfig(out, (c) => {
      c.tie_word_embeddings = true;
    });
    const stored = loadSafetensors(path.join(out, "model.safetensors"));
    const warnings: string[] = [];
    const { model, config } = await loadPretrained(out, { onWarning: (m) => warnings.push(m) });
    try {
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], /config\.json: the config ties lm_head\.weight and model\.text_model\.embed_tokens\.weight, but the checkpoint stores both with different values; loading them untied/);
      assert.equal((config as unknown as { tieWordEmbeddings: boolean }).tieWordEmbeddings, false);
      const head = (model as unknown as WithHead).lm_head.weight;
      assert.ok(sameValues(head, stored.get("lm_head.weight")!), "lm_head holds the stored lm_head");
      assert.ok(!sameValues(head, stored.get("model.text_model.embed_tokens.weight")!), "not the embeddings");
      const again = path.join(dir, "stored-differs-resaved");
      await savePretrained(model, again, { copyFilesFrom: out });
      const cfg = JSON.parse(fs.readFileSync(path.join(again, "config.json"), "utf8"));
      assert.equal(cfg.tie_word_embeddings, false);
      const re: string[] = [];
      const back = await loadPretrained(again, { onWarning: (m) => re.push(m) });
      assert.deepEqual(re, []);
      assert.ok(sameValues((back.model as unknown as WithHead).lm_head.weight, head));
      back.model.dispose();
    } finally {
      model.dispose();
      for (const t of stored.values()) t.dispose();
    }
  });

  test("config ties and the stored lm_head equals the embeddings: tied, no warning", async () => {
    const out = await untiedIdefics3("stored-equal");
    editConfig(out, (c) => {
      c.tie_word_embeddings = true;
    });
    const file = path.join(out, "model.safetensors");
    const t = loadSafetensors(file);
    t.set("lm_head.weight", t.get("model.text_model.embed_tokens.weight")!.clone());
    saveSafetensors(file, t, { format: "pt" });
    for (const x of t.values()) x.dispose();
    const warnings: string[] = [];
    const { model } = await loadPretrained(out, { onWarning: (m) => warnings.push(m) });
    try {
      const m = model as unknown as WithHead & { model: { text_model: { embed_tokens: { weight: Tensor } } } };
      assert.equal(m.lm_head.weight, m.model.text_model.embed_tokens.weight, "one shared parameter");
      assert.deepEqual(warnings, []);
    } finally {
      model.dispose();
    }
  });

  test("Qwen2-VL: a tying config over a stored, different lm_head loads untied with the warning", async () => {
    const out = path.join(dir, "qwen");
    fs.cpSync(MODEL_DIRS.qwen2_vl, out, { recursive: true });
    editConfig(out, (c) => {
      c.tie_word_embeddings = true;
    });
    const warnings: string[] = [];
    const { model, config } = await loadPretrained(out, { onWarning: (m) => warnings.push(m) });
    try {
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], /ties lm_head\.weight and model\.language_model\.embed_tokens\.weight/);
      assert.equal((config as unknown as { tieWordEmbeddings: boolean }).tieWordEmbeddings, false);
    } finally {
      model.dispose();
    }
  });
});
