// The policy layer over the model interface, on a tiny Idefics3 written by
// init-model: encoded prompts own their image handles (the encoder's cache
// survives their disposal), batches and classification leave no tensor
// behind, LoRA takes its default targets and scopes from the model family,
// and the interface's pieces agree with each other exactly.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { synthesizeDataset } from "../../src/data/synth/writer.js";
import { loadSplits } from "../../src/data/splits_from_config.js";
import type { Example } from "../../src/data/types.js";
import { catImageInputs, disposeImageInputs, initModel, positionsFromMask } from "../../src/models/index.js";
import { loraModules } from "../../src/nn/lora.js";
import { classifyExamples, collatePrompts, collateSft, disposeEncoded, disposePromptBatch, loadPolicy, type Policy } from "../../src/policy/index.js";
import { liveTensors, noGrad, tidy } from "../../src/torch/index.js";

let root = "";
let modelDir = "";
let examples: Example[] = [];
const prompt = { systemPrompt: "", userPrompt: "Categories: {categories}?" };

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-policy-"));
  const ds = await synthesizeDataset({ outDir: path.join(root, "data"), n: 40, imageSize: 32, seed: 4 });
  modelDir = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "model"), seed: 5 })).dir;
  const s = await loadSplits({ path: ds.manifest, format: "auto", categories: ["nudity", "weapons"], on_bad_row: "fail", split_seed: 0, val_fraction: 0.1, test_fraction: 0.1 });
  examples = s.train.slice(0, 6);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

describe("inference policy", () => {
  let policy: Policy;
  before(async () => {
    policy = await loadPolicy({ modelDir, prompt });
  });
  after(() => policy.dispose());

  test("encoded prompts own their image handles; the cache survives their disposal", async () => {
    const a = await policy.encoder.encodePrompt(examples[0]);
    const cached = policy.encoder.cachedCount();
    const base = liveTensors();
    disposeEncoded([a]);
    assert.equal(liveTensors(), base - 1, "one alias freed");
    const b = await policy.encoder.encodePrompt(examples[0]);
    assert.equal(policy.encoder.cachedCount(), cached, "second encode is a cache hit");
    assert.ok(b.images && b.images.pixelValues.shape[0] >= 1);
    assert.equal(b.imageTokens, b.ids.filter((t) => t === policy.model.imageTokenId).length);
    disposeEncoded([b]);
  });

  test("the model interface: image-token features replace pixels exactly; positions come from the mask", async () => {
    const enc = await Promise.all(examples.slice(0, 3).map((e) => policy.encoder.encodePrompt(e)));
    const batch = collatePrompts(enc, policy.padTokenId);
    // Warm-up: the first forward at a length fills the rotary cos/sin tables (kept by the model).
    noGrad(() => tidy(() => policy.model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, ...catImageInputs(batch.images)! })));
    const base = liveTensors();
    noGrad(() =>
      tidy(() => {
        const images = catImageInputs(batch.images)!;
        const feats = policy.model.encodeImageTokens(images);
        assert.equal(feats.shape[0], batch.imageTokens.reduce((x, y) => x + y, 0));
        const viaPixels = policy.model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, ...images }).logits;
        const viaFeatures = policy.model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, imageFeatures: feats }).logits;
        assert.equal(viaPixels.sub(viaFeatures).abs().max().item(), 0);
        const pos = policy.model.prefillPositions(batch.inputIds, batch.attentionMask);
        assert.deepEqual(pos.positionIds.toFlatArray(), positionsFromMask(batch.attentionMask).toFlatArray());
        assert.equal(pos.ropeDeltas, undefined);
      }),
    );
    assert.equal(liveTensors(), base);
    disposePromptBatch(batch);
    disposeEncoded(enc);
  });

  test("an SFT batch concatenates the prompts' images and owns the copy", async () => {
    const enc = await Promise.all(examples.slice(0, 2).map((e) => policy.encoder.encodePrompt(e)));
    const b = collateSft(enc, enc.map(() => [5, 6]), policy.padTokenId);
    const tiles = enc.reduce((n, e) => n + e.images!.pixelValues.shape[0], 0);
    assert.equal(b.images!.pixelValues.shape[0], tiles);
    assert.equal(b.numTargetTokens, 4);
    for (const t of [b.inputIds, b.attentionMask, b.labels]) t.dispose();
    disposeImageInputs(b.images);
    disposeEncoded(enc);
    // the prompts' own handles were untouched
    assert.equal((await policy.encoder.encodePrompt(examples[0])).images!.pixelValues.shape[0] > 0, true);
  });

  test("classification returns one answer and score per example and frees what it makes", async () => {
    await classifyExamples(policy, examples, { batchSize: 4, maxNewTokens: 4 }); // warm caches (rotary tables, the encoder's images)
    const base = liveTensors();
    const r = await classifyExamples(policy, examples, { batchSize: 4, maxNewTokens: 4 });
    assert.equal(liveTensors(), base);
    assert.deepEqual(r.map((x) => x.id), examples.map((e) => e.id));
    for (const x of r) assert.ok(x.score >= 0 && x.score <= 1 && Number.isFinite(x.score), `score ${x.score}`);
    assert.equal(policy.trainable.length, 0);
  });
});

describe("training policy", () => {
  test("LoRA takes the family's default targets and leaves the vision tower and connector alone", async () => {
    const p = await loadPolicy({ modelDir, prompt, training: { lora: { rank: 2 } } });
    try {
      const paths = loraModules(p.model).map(([k]) => k);
      assert.ok(paths.length > 0);
      for (const k of paths) {
        assert.ok(!k.startsWith("model.vision_model") && !k.startsWith("model.connector"), k);
        assert.ok(p.model.defaultLoraTargets.includes(k.slice(k.lastIndexOf(".") + 1)), k);
      }
      assert.ok(p.lora && p.trainable.length === 2 * paths.length);
    } finally {
      p.dispose();
    }
    const v = await loadPolicy({ modelDir, prompt, training: { lora: { rank: 2, includeVision: true, includeConnector: true } } });
    try {
      const paths = loraModules(v.model).map(([k]) => k);
      assert.ok(paths.some((k) => k.startsWith("model.vision_model.")));
      assert.ok(paths.includes("model.connector.modality_projection.proj"));
    } finally {
      v.dispose();
    }
  });

  test("full fine-tuning with a frozen vision tower trains everything else", async () => {
    const p = await loadPolicy({ modelDir, prompt, training: { lora: null, freezeVision: true } });
    try {
      const frozen = p.model.namedParameters().filter(([, t]) => !t.requiresGrad).map(([k]) => k);
      assert.ok(frozen.length > 0);
      assert.ok(frozen.every((k) => k.startsWith("model.vision_model.")), frozen.join(", "));
      assert.equal(p.trainable.length, p.model.namedParameters().length - frozen.length);
    } finally {
      p.dispose();
    }
  });

  test("a text-only folder is refused with a clear error", async () => {
    const llama = (await initModel({ arch: "llama", preset: "tiny", outDir: path.join(root, "llama"), seed: 1 })).dir;
    await assert.rejects(loadPolicy({ modelDir: llama, prompt }), /text-only llama model/);
  });
});
