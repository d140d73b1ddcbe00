// SFT's horizontal-flip augmentation: the mirror is exact, the per-step
// draws are reproducible and fair, and the encoder hands out the mirrored
// pixels (cached apart from the unflipped ones) for a real Idefics3 model.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { after, before, test } from "node:test";
import { initModel } from "../../src/models/index.js";
import { disposeEncoded, flipHorizontal, flipsForStep, loadPolicy } from "../../src/policy/index.js";

let root = "";
let modelDir = "";
before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-augment-"));
  modelDir = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "model"), seed: 5 })).dir;
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("flipHorizontal mirrors every row, channels kept together", () => {
  // 3 x 2 RGB: pixel (x, y) = [10x + y, 100 + x, 200 + y]
  const w = 3;
  const h = 2;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([10 * x + y, 100 + x, 200 + y], (y * w + x) * 3);
  const out = flipHorizontal({ data, width: w, height: h });
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) assert.deepEqual([...out.data.subarray((y * w + x) * 3, (y * w + x) * 3 + 3)], [10 * (w - 1 - x) + y, 100 + w - 1 - x, 200 + y]);
  assert.deepEqual(flipHorizontal(out).data, data, "two flips give the image back");
  assert.throws(() => flipHorizontal({ data: new Uint8Array(7), width: 3, height: 2 }), /whole number of channels/);
});

test("flipsForStep: the same draws for the same seed and step, none without augmentation, about half flipped", () => {
  assert.deepEqual(flipsForStep("hflip", 3, 17, 8), flipsForStep("hflip", 3, 17, 8));
  assert.notDeepEqual(flipsForStep("hflip", 3, 17, 64), flipsForStep("hflip", 3, 18, 64));
  assert.deepEqual(flipsForStep("none", 3, 17, 4), [false, false, false, false]);
  let flipped = 0;
  const steps = 500;
  for (let s = 1; s <= steps; s++) flipped += flipsForStep("hflip", 0, s, 8).filter(Boolean).length;
  // 4,000 fair draws: the share is within 0.5 +- 0.03 (about 3.8 standard deviations).
  assert.ok(Math.abs(flipped / (steps * 8) - 0.5) < 0.03, `${flipped} of ${steps * 8} flipped`);
});

test("encodePrompt({ mirror: true }) gives the mirrored pixels, cached apart from the original", async () => {
  // A 32 x 32 image (the tiny preset's size: no resize) with a left-right asymmetric pattern.
  const side = 32;
  const raw = Buffer.alloc(side * side * 3);
  for (let p = 0; p < side * side; p++) raw.set([(p % side) * 8, (p * 13) & 255, Math.floor(p / side) * 8], p * 3);
  const file = path.join(root, "img.png");
  fs.writeFileSync(file, await sharp(raw, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer());
  const policy = await loadPolicy({ modelDir, prompt: { systemPrompt: "", userPrompt: "Categories: {categories}?" } });
  try {
    const ex = { id: "a", image: { path: file }, labels: [], source: { file: "m.jsonl", line: 1 } };
    const plain = await policy.encoder.encodePrompt(ex);
    const mirrored = await policy.encoder.encodePrompt(ex, { mirror: true });
    const again = await policy.encoder.encodePrompt(ex, { mirror: true });
    assert.deepEqual(mirrored.ids, plain.ids);
    const pv = plain.images!.pixelValues;
    assert.equal(pv.size(-1), side, "no resize in this test");
    const flat = pv.toFlatArray();
    // Every row of the last (width) axis reversed.
    const expected = flat.map((_, i) => flat[i - (i % side) + (side - 1 - (i % side))]);
    const got = mirrored.images!.pixelValues.toFlatArray();
    let maxDiff = 0;
    for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - expected[i]));
    assert.ok(maxDiff <= 1e-6, `mirrored pixels differ from the flipped original by ${maxDiff}`);
    assert.notDeepEqual(got.slice(0, side), flat.slice(0, side), "the pattern is asymmetric, so mirroring must change it");
    assert.deepEqual(again.images!.pixelValues.toFlatArray(), got, "a cache hit returns the mirrored pixels");
    const s = policy.encoder.cacheStats();
    assert.equal(s.misses, 2);
    assert.equal(s.hits, 1);
    disposeEncoded([plain, mirrored, again]);
  } finally {
    policy.dispose();
  }
});
