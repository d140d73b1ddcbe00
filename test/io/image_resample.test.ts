// Resizing: the "pil" backend is bit-exact against Pillow 9.4's Image.resize
// for every filter, enlarging and reducing (reference pixels from
// scripts/fixtures/make_image_reference.py); the "sharp" backend is close on
// smooth reductions and exact on constant colours; bad sizes are errors.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { decodeImage, type DecodedImage } from "../../src/io/image_decode.js";
import { PIL_RESAMPLE, PIL_RESAMPLE_NAMES, type PilResample, resizePil, resizeSharp } from "../../src/io/image_resample.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const FIX = path.join(ROOT, "test/fixtures/images");
interface ResizeCase {
  input: string;
  width: number;
  height: number;
  resample: PilResample;
  sha256: string;
  data?: string;
}
const ref = JSON.parse(fs.readFileSync(path.join(FIX, "pil_reference.json"), "utf8")) as { inputs: Record<string, string>; resize: ResizeCase[] };
const sha = (b: Uint8Array) => crypto.createHash("sha256").update(b).digest("hex");

function smooth(w: number, h: number): DecodedImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      data[i] = Math.round((255 * x) / (w - 1));
      data[i + 1] = Math.round((255 * y) / (h - 1));
      data[i + 2] = Math.round(127.5 + 100 * Math.sin((x + y) / 40));
    }
  }
  return { data, width: w, height: h };
}

test("pil backend: every filter, enlarging and reducing, equals Pillow byte for byte", async () => {
  const inputs: Record<string, DecodedImage> = {};
  for (const [k, f] of Object.entries(ref.inputs)) inputs[k] = await decodeImage(path.join(FIX, f));
  assert.ok(ref.resize.length >= 40, "fixture has the resize cases");
  const filters = new Set<number>();
  for (const c of ref.resize) {
    const out = resizePil(inputs[c.input], c.width, c.height, c.resample);
    assert.deepEqual([out.width, out.height, out.data.length], [c.width, c.height, c.width * c.height * 3]);
    if (sha(out.data) !== c.sha256) {
      let where = "";
      if (c.data) {
        const want = Buffer.from(c.data, "base64");
        const i = want.findIndex((v, j) => v !== out.data[j]);
        where = ` first difference at byte ${i}: ${out.data[i]} vs Pillow's ${want[i]}`;
      }
      assert.fail(`${c.input} -> ${c.width}x${c.height} with ${PIL_RESAMPLE_NAMES[c.resample]} differs from Pillow.${where}`);
    }
    filters.add(c.resample);
  }
  assert.equal(filters.size, 6, "all six PIL filters were checked");
});

test("constant colours stay exact under both backends, any size change", async () => {
  const img: DecodedImage = { data: Uint8Array.from({ length: 50 * 30 * 3 }, (_, i) => [7, 128, 250][i % 3]), width: 50, height: 30 };
  for (const [w, h] of [[17, 11], [200, 90], [50, 64]]) {
    for (const f of [PIL_RESAMPLE.LANCZOS, PIL_RESAMPLE.BICUBIC, PIL_RESAMPLE.BILINEAR]) {
      for (const out of [resizePil(img, w, h, f), await resizeSharp(img, w, h, f)]) {
        assert.equal(out.data.length, w * h * 3);
        assert.ok(out.data.every((v, i) => v === [7, 128, 250][i % 3]), `${w}x${h} filter ${f}`);
      }
    }
  }
});

test("sharp backend: close to Pillow on a smooth reduction (mean |diff| < 1 level, max <= 8)", async () => {
  // Measured: on smooth images the two agree within a few levels when reducing;
  // enlarging (and hard edges) differs much more (libvips aligns samples
  // differently), which is why "pil" is the default.
  const img = smooth(400, 300);
  const a = resizePil(img, 128, 96, PIL_RESAMPLE.LANCZOS);
  const b = await resizeSharp(img, 128, 96, PIL_RESAMPLE.LANCZOS);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    max = Math.max(max, d);
    sum += d;
  }
  assert.ok(sum / a.data.length < 1, `mean |diff| ${sum / a.data.length}`);
  assert.ok(max <= 8, `max |diff| ${max}`);
});

test("same size is a copy; bad sizes and data are errors", async () => {
  const img = smooth(8, 6);
  const same = resizePil(img, 8, 6, PIL_RESAMPLE.LANCZOS);
  assert.deepEqual(same.data, img.data);
  assert.notEqual(same.data, img.data);
  assert.throws(() => resizePil(img, 0, 5), /target size must be positive integers, got 0x5/);
  assert.throws(() => resizePil(img, 2.5, 5), /positive integers/);
  assert.throws(() => resizePil({ data: new Uint8Array(10), width: 8, height: 6 }, 4, 4), /10 bytes, expected 8x6x3 = 144/);
  assert.throws(() => resizePil(img, 4, 4, 9 as PilResample), /unknown PIL resample filter 9/);
  await assert.rejects(resizeSharp(img, -1, 4), /positive integers/);
});
