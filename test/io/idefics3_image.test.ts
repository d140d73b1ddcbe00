// The Idefics3 image path: decoding of many formats, resize/tiling geometry
// (values derived by hand from transformers' algorithm), normalized values,
// the expanded prompt string, and errors naming the file.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import sharp from "sharp";
import {
  decodeImage,
  expandImageTokens,
  type Idefics3ImageProcessorConfig,
  imagePromptString,
  longestEdgeSize,
  processImages,
  readProcessorConfig,
  tileImage,
  visionEncoderSize,
  writeProcessorFiles,
} from "../../src/io/idefics3_image.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-img-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const cfgOf = (imageSize: number, longestEdge: number, split: boolean): Idefics3ImageProcessorConfig => ({
  doResize: true,
  longestEdge,
  doImageSplitting: split,
  imageSize,
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  imageMean: [0.5, 0.5, 0.5],
  imageStd: [0.5, 0.5, 0.5],
  imageSeqLen: 4,
});
const solid = (w: number, h: number, rgb: [number, number, number]) => ({ data: Uint8Array.from({ length: w * h * 3 }, (_, i) => rgb[i % 3]), width: w, height: h });

test("geometry: longest edge with an even short side, then multiples of the tile size", () => {
  // 300 x 200 (w x h) to longest edge 2048: w 2048, h int(2048 / 1.5) = 1365 -> 1366.
  assert.deepEqual(longestEdgeSize(200, 300, 2048), { height: 1366, width: 2048 });
  // The vision-encoder size: w ceil(2048/512)*512 = 2048; h ceil(int(2048/1.5)/512)*512 = 1536.
  assert.deepEqual(visionEncoderSize(1366, 2048, 512), { height: 1536, width: 2048 });
  // Tall: 200 x 300 (w x h).
  assert.deepEqual(longestEdgeSize(300, 200, 2048), { height: 2048, width: 1366 });
  assert.deepEqual(visionEncoderSize(2048, 1366, 512), { height: 2048, width: 1536 });
  assert.deepEqual(longestEdgeSize(100, 100, 64), { height: 64, width: 64 });
});

test("tile counts: SmolVLM-256M settings and a tiny config", async () => {
  const smol = cfgOf(512, 2048, true);
  const wide = await tileImage(solid(300, 200, [10, 20, 30]), smol);
  assert.deepEqual([wide.rows, wide.cols, wide.tiles.length], [3, 4, 13]);
  assert.ok(wide.tiles.every((t) => t.width === 512 && t.height === 512));
  const tall = await tileImage(solid(200, 300, [10, 20, 30]), smol);
  assert.deepEqual([tall.rows, tall.cols, tall.tiles.length], [4, 3, 13]);
  // Tiny: max 32, longest 128: 300x200 -> 128x86 -> 128x96 -> 3 rows x 4 cols.
  const tiny = await tileImage(solid(300, 200, [0, 0, 0]), cfgOf(32, 128, true));
  assert.deepEqual([tiny.rows, tiny.cols, tiny.tiles.length], [3, 4, 13]);
  // An image that fits one tile is a single image (0 x 0).
  const small = await tileImage(solid(20, 20, [0, 0, 0]), cfgOf(32, 32, true));
  assert.deepEqual([small.rows, small.cols, small.tiles.length], [0, 0, 1]);
  // Without splitting: one S x S image.
  const nosplit = await tileImage(solid(300, 200, [0, 0, 0]), cfgOf(32, 32, false));
  assert.deepEqual([nosplit.rows, nosplit.cols, nosplit.tiles.length, nosplit.tiles[0].width], [0, 0, 1, 32]);
});

test("normalized values of a solid colour are exact: (c / 255 - 0.5) / 0.5", async () => {
  const rgb: [number, number, number] = [0, 128, 255];
  const r = await processImages([solid(40, 30, rgb)], cfgOf(16, 16, false));
  assert.deepEqual(r.pixelValues.shape, [1, 3, 16, 16]);
  const v = r.pixelValues.toFlatArray();
  for (let c = 0; c < 3; c++) {
    const want = (rgb[c] / 255 - 0.5) / 0.5;
    const plane = v.slice(c * 256, (c + 1) * 256);
    assert.ok(plane.every((x) => Math.abs(x - want) < 1e-6), `channel ${c}: ${plane[0]} vs ${want}`);
  }
  r.pixelValues.dispose();
});

test("the expanded prompt matches transformers' strings", () => {
  const F = "<fake_token_around_image>";
  assert.equal(imagePromptString(0, 0, 2), `${F}<global-img><image><image>${F}`);
  assert.equal(
    imagePromptString(1, 2, 2),
    `${F}<row_1_col_1><image><image>${F}<row_1_col_2><image><image>\n\n${F}<global-img><image><image>${F}`,
  );
  assert.equal(expandImageTokens("User:<image>Is it safe?", [0], [0], 1), `User:${F}<global-img><image>${F}Is it safe?`);
  assert.throws(() => expandImageTokens("<image><image>", [0], [0], 1), /2 <image> marker\(s\) but 1 image/);
});

test("decodes PNG, JPEG, WebP, GIF, grayscale, RGBA (onto white), CMYK, 16-bit and EXIF-rotated images", async () => {
  const raw = Buffer.from(Uint8Array.from({ length: 6 * 4 * 3 }, (_, i) => (i * 7) % 256));
  const base = () => sharp(raw, { raw: { width: 6, height: 4, channels: 3 } });
  const files: Record<string, Buffer> = {
    png: await base().png().toBuffer(),
    jpeg: await base().jpeg().toBuffer(),
    webp: await base().webp({ lossless: true }).toBuffer(),
    gif: await base().gif().toBuffer(),
    gray: await base().grayscale().png().toBuffer(),
    cmyk: await base().jpeg().toColourspace("cmyk").toBuffer(),
    png16: await base().toColourspace("rgb16").png().toBuffer(),
  };
  for (const [name, buf] of Object.entries(files)) {
    const d = await decodeImage(buf, { label: name });
    assert.deepEqual([d.width, d.height, d.data.length], [6, 4, 72], name);
  }
  const lossless = await decodeImage(files.png);
  assert.deepEqual(Array.from(lossless.data), Array.from(raw));
  // A fully transparent pixel becomes white (convert_to_rgb composites on white).
  const rgba = await sharp(Buffer.from([0, 0, 0, 0, 10, 20, 30, 255]), { raw: { width: 2, height: 1, channels: 4 } }).png().toBuffer();
  assert.deepEqual(Array.from((await decodeImage(rgba)).data), [255, 255, 255, 10, 20, 30]);
  // EXIF orientation 6 (rotate 90): a 6x4 stored image is 4x6 upright.
  const rotated = await base().jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const r = await decodeImage(rotated);
  assert.deepEqual([r.width, r.height], [4, 6]);
});

test("errors name the file: missing, corrupt, unsupported, and too many pixels", async () => {
  await assert.rejects(decodeImage(path.join(tmp, "missing.png")), /missing\.png: image file not found/);
  const bad = path.join(tmp, "corrupt.jpg");
  fs.writeFileSync(bad, Buffer.from("this is not a jpeg at all"));
  await assert.rejects(decodeImage(bad), /corrupt\.jpg: not a readable image/);
  const big = path.join(tmp, "big.png");
  await sharp({ create: { width: 400, height: 300, channels: 3, background: "#808080" } }).png().toFile(big);
  await assert.rejects(decodeImage(big, { maxPixels: 100_000 }), /big\.png: 400x300 = 120000 pixels exceeds the limit of 100000/);
});

test("processor config files round-trip and bad values are named", async () => {
  const dir = path.join(tmp, "proc");
  fs.mkdirSync(dir);
  await writeProcessorFiles(dir, { imageSize: 512, imageSeqLen: 64, doImageSplitting: true });
  const c = readProcessorConfig(dir);
  assert.deepEqual([c.imageSize, c.longestEdge, c.doImageSplitting, c.imageSeqLen], [512, 2048, true, 64]);
  const pre = JSON.parse(fs.readFileSync(path.join(dir, "preprocessor_config.json"), "utf8"));
  pre.max_image_size = { longest_edge: "big" };
  fs.writeFileSync(path.join(dir, "preprocessor_config.json"), JSON.stringify(pre));
  assert.throws(() => readProcessorConfig(dir), /preprocessor_config\.json: max_image_size must be/);
});
