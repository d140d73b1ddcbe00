// The Idefics3 image processor: geometry and tile counts derived by hand from
// transformers' algorithm (SmolVLM-256M settings and a tiny config), the
// 8-bit tiles equal to transformers' PIL chain (reference from
// scripts/fixtures/make_image_reference.py), rescale/normalize bit-exact
// against numpy's float32 arithmetic, exact values for solid colours, shapes,
// the pixel mask, and no leaked tensors.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { decodeImage, type DecodedImage } from "../../../src/io/image_decode.js";
import {
  longestEdgeSize,
  normalizationTable,
  planTiles,
  processImages,
  rescaleToMaxLen,
  scaleBelowUpperBound,
  tileImage,
  visionEncoderSize,
} from "../../../src/models/idefics3/image_processor.js";
import { type Idefics3ImageProcessorConfig, resolveImageProcessorConfig } from "../../../src/models/idefics3/image_processor_config.js";
import { liveTensors } from "../../../src/torch/index.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const FIX = path.join(ROOT, "test/fixtures/images");
const ref = JSON.parse(fs.readFileSync(path.join(FIX, "pil_reference.json"), "utf8"));

/** SmolVLM-256M-Instruct's settings. */
const SMOL = resolveImageProcessorConfig({ size: { longest_edge: 2048 }, max_image_size: { longest_edge: 512 } }, { image_seq_len: 64 });
/** A tiny config: tiles of 32, longest edge 128. */
const tiny = (over: Record<string, unknown> = {}): Idefics3ImageProcessorConfig =>
  resolveImageProcessorConfig({ size: { longest_edge: 128 }, max_image_size: { longest_edge: 32 }, ...over }, { image_seq_len: 4 });
const solid = (w: number, h: number, rgb: number[]): DecodedImage => ({ data: Uint8Array.from({ length: w * h * 3 }, (_, i) => rgb[i % 3]), width: w, height: h });
const sha = (tiles: DecodedImage[]) => {
  const h = crypto.createHash("sha256");
  for (const t of tiles) h.update(t.data);
  return h.digest("hex");
};

test("geometry: transformers' rounding rules, derived by hand", () => {
  // 300 wide x 200 high to longest edge 2048: width 2048, height int(2048 / 1.5) = 1365, odd -> 1366.
  assert.deepEqual(rescaleToMaxLen(200, 300, 2048), { height: 1366, width: 2048 });
  assert.deepEqual(longestEdgeSize(200, 300, 2048), { height: 1366, width: 2048 });
  // Tall: the width is the derived side.
  assert.deepEqual(longestEdgeSize(300, 200, 2048), { height: 2048, width: 1366 });
  // Very tall 100 x 1000: width int(2048 * 0.1) = 204 (even).
  assert.deepEqual(longestEdgeSize(1000, 100, 2048), { height: 2048, width: 204 });
  // Square.
  assert.deepEqual(longestEdgeSize(512, 512, 2048), { height: 2048, width: 2048 });
  // Above 4096 the image is scaled back under it (aspect kept, no rounding to even there).
  assert.deepEqual(longestEdgeSize(300, 900, 5000), { height: 1364, width: 4096 }); // 900x300 -> 5000x1666 -> 4096 x int(4096 / (5000/1666))
  assert.deepEqual(scaleBelowUpperBound(1000, 5000, 4096), { height: 819, width: 4096 });
  assert.deepEqual(scaleBelowUpperBound(100, 200, 4096), { height: 100, width: 200 });
  // Multiples of the tile: 2048 x 1366 -> width 2048, height ceil(int(2048 / (2048/1366)) / 512) * 512 = 1536.
  assert.deepEqual(visionEncoderSize(1366, 2048, 512), { height: 1536, width: 2048 });
  assert.deepEqual(visionEncoderSize(2048, 1366, 512), { height: 2048, width: 1536 });
  assert.deepEqual(visionEncoderSize(2048, 204, 512), { height: 2048, width: 512 });
  // Without the first resize, a 300 x 200 image fits one 512 tile: 512 x ceil(int(512/1.5)=341 / 512)*512 = 512.
  assert.deepEqual(visionEncoderSize(200, 300, 512), { height: 512, width: 512 });
});

test("tile counts with SmolVLM-256M's settings (longest edge 2048, tiles 512)", () => {
  const grid = (w: number, h: number, cfg = SMOL) => {
    const p = planTiles(h, w, cfg);
    return [p.rows, p.cols, p.numTiles];
  };
  assert.deepEqual(grid(300, 200), [3, 4, 13]); // wide
  assert.deepEqual(grid(200, 300), [4, 3, 13]); // tall
  assert.deepEqual(grid(512, 512), [4, 4, 17]); // square: 2048 x 2048
  assert.deepEqual(grid(100, 1000), [4, 1, 5]); // very tall: 204 wide -> one column
  assert.deepEqual(grid(4000, 3000), [3, 4, 13]); // a photo: 2048 x 1536
  assert.deepEqual(grid(300, 200, { ...SMOL, doResize: false }), [0, 0, 1]); // fits one tile: a single image
  assert.deepEqual(grid(1100, 200, { ...SMOL, doResize: false }), [1, 3, 4]); // 1536 x 512 without the first resize
  assert.deepEqual(grid(300, 200, { ...SMOL, doImageSplitting: false }), [0, 0, 1]);
});

test("tile counts with a tiny config (longest edge 128, tiles 32), and the tiles themselves", async () => {
  // 300 x 200 -> 128 x 86 -> 128 x 96 -> 3 rows x 4 cols + global.
  const wide = await tileImage(solid(300, 200, [10, 20, 30]), tiny());
  assert.deepEqual([wide.rows, wide.cols, wide.tiles.length], [3, 4, 13]);
  assert.ok(wide.tiles.every((t) => t.width === 32 && t.height === 32 && t.data.length === 32 * 32 * 3));
  const tall = await tileImage(solid(200, 300, [10, 20, 30]), tiny());
  assert.deepEqual([tall.rows, tall.cols, tall.tiles.length], [4, 3, 13]);
  // An image whose resized form is one tile: a single image (0 x 0).
  const one = await tileImage(solid(20, 20, [0, 0, 0]), tiny({ size: { longest_edge: 32 } }));
  assert.deepEqual([one.rows, one.cols, one.tiles.length, one.tiles[0].width], [0, 0, 1, 32]);
  // Without splitting: one 32 x 32 image whatever the aspect.
  const flat = await tileImage(solid(300, 20, [0, 0, 0]), tiny({ do_image_splitting: false }));
  assert.deepEqual([flat.rows, flat.cols, flat.tiles.length, flat.tiles[0].width, flat.tiles[0].height], [0, 0, 1, 32, 32]);
  // An exact size instead of a longest edge: 64 x 64 -> 2 x 2 tiles.
  const exact = await tileImage(solid(300, 200, [0, 0, 0]), tiny({ size: { height: 64, width: 64 } }));
  assert.deepEqual([exact.rows, exact.cols], [2, 2]);
});

test("the 8-bit tiles equal transformers' PIL resize chain (tiny config in full, SmolVLM-256M config by hash)", async () => {
  const inputs: Record<string, DecodedImage> = {};
  for (const [k, f] of Object.entries(ref.inputs as Record<string, string>)) inputs[k] = await decodeImage(path.join(FIX, f));
  let smolCases = 0;
  for (const c of ref.pipeline) {
    const cfg = resolveImageProcessorConfig({ size: { longest_edge: c.longestEdge }, max_image_size: { longest_edge: c.maxImageSize }, do_image_splitting: c.split });
    const t = await tileImage(inputs[c.input], cfg);
    const what = `${c.input} longest ${c.longestEdge} tiles ${c.maxImageSize} split ${c.split}`;
    assert.deepEqual([t.rows, t.cols], [c.rows, c.cols], what);
    if (c.tiles) {
      assert.equal(t.tiles.length, c.tiles.length, what);
      c.tiles.forEach((b64: string, i: number) => assert.deepEqual(Buffer.from(t.tiles[i].data), Buffer.from(b64, "base64"), `${what}: tile ${i}`));
    } else {
      assert.equal(t.tiles.length, c.numTiles, what);
      assert.equal(sha(t.tiles), c.sha256, `${what}: tiles differ from transformers' PIL chain`);
      smolCases++;
    }
  }
  assert.equal(smolCases, 2);
});

test("rescale + normalize: bit-exact with numpy's float32 arithmetic, for two mean/std sets", () => {
  for (const n of ref.normalize) {
    const lut = normalizationTable(resolveImageProcessorConfig({ image_mean: n.mean, image_std: n.std }));
    for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) assert.equal(lut[c][v], n.table[c][v], `mean ${n.mean[c]} std ${n.std[c]} byte ${v}`);
  }
  // Switched off: rescale only, or raw values.
  assert.equal(normalizationTable(tiny({ do_normalize: false }))[0][255], 1);
  assert.equal(normalizationTable(tiny({ do_normalize: false, do_rescale: false }))[1][200], 200);
});

test("solid colours give exact values (c / 255 - 0.5) / 0.5, shapes [N, 3, S, S], images concatenated in order", async () => {
  const live = liveTensors();
  const a: [number, number, number] = [0, 128, 255];
  const b: [number, number, number] = [255, 64, 1];
  for (const backend of ["pil", "sharp"] as const) {
    const r = await processImages([solid(300, 200, a), solid(20, 20, b)], tiny(), { backend, returnPixelAttentionMask: true });
    // First image 13 tiles, second (20 x 20 -> 128 x 128 -> 4 x 4 tiles) 17.
    assert.deepEqual([r.rows, r.cols, r.tilesPerImage], [[3, 4], [4, 4], [13, 17]]);
    assert.deepEqual(r.pixelValues.shape, [30, 3, 32, 32]);
    assert.equal(r.pixelValues.dtype, "float32");
    const v = r.pixelValues.toTypedArray() as Float32Array;
    const plane = 32 * 32;
    for (let n = 0; n < 30; n++) {
      const rgb = n < 13 ? a : b;
      for (let c = 0; c < 3; c++) {
        const want = (rgb[c] / 255 - 0.5) / 0.5;
        const got = v.subarray((n * 3 + c) * plane, (n * 3 + c + 1) * plane);
        assert.ok(got.every((x) => x === got[0]), `${backend} tile ${n} channel ${c} is constant`);
        assert.ok(Math.abs(got[0] - want) < 1e-6, `${backend} tile ${n} channel ${c}: ${got[0]} vs ${want}`);
        assert.equal(got[0], Math.fround(Math.fround(rgb[c] * (1 / 255)) - 0.5) / 0.5); // float32, as transformers
      }
    }
    assert.deepEqual(r.pixelAttentionMask!.shape, [30, 32, 32]);
    assert.equal(r.pixelAttentionMask!.dtype, "bool");
    const all = r.pixelAttentionMask!.all();
    assert.equal(Boolean(all.item()), true);
    all.dispose();
    r.pixelValues.dispose();
    r.pixelAttentionMask!.dispose();
  }
  assert.equal(liveTensors(), live, "no tensor leaked");
});

test("a smooth image: the sharp backend stays close to the exact one (tolerance), the global image is the whole picture", async () => {
  const w = 300;
  const h = 200;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([Math.round((255 * x) / (w - 1)), Math.round((255 * y) / (h - 1)), 100], (y * w + x) * 3);
  const img = { data, width: w, height: h };
  const exact = await tileImage(img, tiny());
  const fast = await tileImage(img, tiny(), { backend: "sharp" });
  let max = 0;
  exact.tiles.forEach((t, i) => t.data.forEach((v, j) => (max = Math.max(max, Math.abs(v - fast.tiles[i].data[j])))));
  assert.ok(max <= 6, `max difference ${max} grey levels`);
  // Global image: red grows left to right, green top to bottom.
  const g = exact.tiles[12];
  const at = (x: number, y: number, c: number) => g.data[(y * 32 + x) * 3 + c];
  assert.ok(at(1, 16, 0) < 20 && at(30, 16, 0) > 235 && at(16, 1, 1) < 20 && at(16, 30, 1) > 235);
  // Tile (row 1, col 4) is the top-right corner: high red, low green.
  const tr = exact.tiles[3];
  assert.ok(tr.data[(0 * 32 + 31) * 3] > 240 && tr.data[(0 * 32 + 31) * 3 + 1] < 10);
});

test("bad input is an error naming the image", async () => {
  await assert.rejects(processImages([], tiny()), /processImages: no images given/);
  await assert.rejects(processImages([solid(4, 4, [0, 0, 0]), { data: new Uint8Array(5), width: 4, height: 4 }], tiny()), /processImages: image 1: data has 5 bytes, expected 4x4x3 = 48/);
  await assert.rejects(processImages([{ data: new Uint8Array(0), width: 0, height: 3 }], tiny()), /image 0: width and height must be positive integers, got 0x3/);
});
