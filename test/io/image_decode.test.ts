// decodeImage: formats and conversions (lossless ones compared byte for byte,
// alpha dropped as Pillow's convert("RGB") does), EXIF orientation, and
// errors that name the file: missing, corrupt, truncated, unsupported, too
// many pixels (a hand-made PNG header claiming 20000 x 20000).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import zlib from "node:zlib";
import sharp from "sharp";
import { cmykToRgbLikePillow, decodeImage, dropAlpha, DEFAULT_MAX_PIXELS, grey16ToRgbLikePillow } from "../../src/io/image_decode.js";
import { tempDir } from "./helpers.js";

const tmp = tempDir("img-decode");
const W = 6;
const H = 4;
const RAW = Buffer.from(Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 37 + 11) % 256));
const base = () => sharp(RAW, { raw: { width: W, height: H, channels: 3 } });

test("lossless formats decode to the exact RGB bytes: PNG, WebP lossless, TIFF, and 16-bit PNG scaled to 8 bits", async () => {
  const png = await base().png().toBuffer();
  const webp = await base().webp({ lossless: true }).toBuffer();
  const tiff = await base().tiff({ compression: "lzw" }).toBuffer();
  const png16 = await base().toColourspace("rgb16").png().toBuffer();
  assert.equal((await sharp(png16).metadata()).depth, "ushort", "the fixture is really 16-bit");
  for (const [name, buf] of Object.entries({ png, webp, tiff, png16 })) {
    const d = await decodeImage(buf, { label: name });
    assert.deepEqual([d.width, d.height], [W, H], name);
    assert.deepEqual(Buffer.from(d.data), RAW, name);
  }
  // From a path too.
  const file = path.join(tmp, "plain.png");
  fs.writeFileSync(file, png);
  assert.deepEqual(Buffer.from((await decodeImage(file)).data), RAW);
});

test("JPEG and CMYK JPEG decode to 3 channels with the right colours (lossy: tolerance)", async () => {
  const solid = (rgb: number[]) => sharp({ create: { width: 16, height: 8, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
  const jpg = await decodeImage(await solid([200, 50, 30]).jpeg({ quality: 95 }).toBuffer());
  assert.deepEqual([jpg.width, jpg.height, jpg.data.length], [16, 8, 16 * 8 * 3]);
  for (let i = 0; i < jpg.data.length; i += 3) assert.ok(Math.abs(jpg.data[i] - 200) <= 3 && Math.abs(jpg.data[i + 1] - 50) <= 3 && Math.abs(jpg.data[i + 2] - 30) <= 3);
  const cmykBuf = await solid([200, 50, 30]).toColourspace("cmyk").jpeg({ quality: 95 }).toBuffer();
  assert.equal((await sharp(cmykBuf).metadata()).space, "cmyk", "the fixture is really CMYK");
  const cmyk = await decodeImage(cmykBuf);
  assert.equal(cmyk.data.length, 16 * 8 * 3);
  // sharp writes CMYK through an ICC profile; decoding uses Pillow's formula without one (as transformers does),
  // so the colour moves but stays a strong red (not inverted, not grey).
  const [r, g, b] = cmyk.data;
  assert.ok(r > 170 && g < 90 && b < 70, `CMYK red decoded as ${r},${g},${b}`);
});

test("CMYK and 16-bit grayscale convert as Pillow's convert(\"RGB\") does (values from Pillow 12.3)", async () => {
  // Image.fromarray(q, "CMYK").convert("RGB") in Pillow 12.3 (the peer suite checks whole files against it).
  const cmyk = Uint8Array.from([0, 0, 0, 0, 255, 255, 255, 255, 117, 19, 112, 0, 10, 200, 30, 77, 255, 0, 128, 200, 1, 2, 3, 254]);
  assert.deepEqual(Array.from(cmykToRgbLikePillow(cmyk)), [255, 255, 255, 0, 0, 0, 138, 236, 143, 171, 38, 157, 0, 55, 27, 1, 1, 1]);
  // Pillow's "I;16" -> "RGB" clips at 255.
  assert.deepEqual(Array.from(grey16ToRgbLikePillow(Uint16Array.from([0, 1, 255, 256, 65535]))), [0, 0, 0, 1, 1, 1, 255, 255, 255, 255, 255, 255, 255, 255, 255]);
  // A 16-bit grayscale PNG file takes that path (sharp widens 8-bit v to v * 257: 0, 257, 65535).
  const g16 = await sharp(Buffer.from([0, 1, 255]), { raw: { width: 3, height: 1, channels: 1 } }).toColourspace("grey16").png().toBuffer();
  assert.equal((await sharp(g16).metadata()).space, "grey16", "the fixture is really 16-bit grayscale");
  assert.deepEqual(Array.from((await decodeImage(g16)).data), [0, 0, 0, 255, 255, 255, 255, 255, 255]);
});

test("grayscale becomes three equal channels; RGBA, grey + alpha and transparent palettes lose alpha as Pillow's convert(\"RGB\") (transformers 5.x)", async () => {
  const grayBuf = await sharp(Buffer.from([0, 64, 128, 255]), { raw: { width: 4, height: 1, channels: 1 } }).toColourspace("b-w").png().toBuffer();
  assert.equal((await sharp(grayBuf).metadata()).channels, 1, "the fixture is really 1-channel");
  assert.deepEqual(Array.from((await decodeImage(grayBuf)).data), [0, 0, 0, 64, 64, 64, 128, 128, 128, 255, 255, 255]);

  // RGBA with alpha 0, 1, 128, 254, 255: the colour channels as stored, whatever the alpha (not composited onto white).
  const rgba = Buffer.from([10, 20, 30, 0, 200, 100, 50, 1, 0, 0, 0, 128, 255, 0, 7, 254, 1, 2, 3, 255]);
  assert.deepEqual(Array.from(dropAlpha(rgba, 5, 1)), [10, 20, 30, 200, 100, 50, 0, 0, 0, 255, 0, 7, 1, 2, 3]);
  const rgbaPng = await sharp(rgba, { raw: { width: 5, height: 1, channels: 4 } }).png().toBuffer();
  assert.equal((await sharp(rgbaPng).metadata()).channels, 4, "the fixture really has alpha");
  assert.deepEqual(Array.from((await decodeImage(rgbaPng)).data), [10, 20, 30, 200, 100, 50, 0, 0, 0, 255, 0, 7, 1, 2, 3]);

  // Grey + alpha: the grey in three channels; a transparent pixel keeps its grey (4.x made it white).
  const ga = await sharp(Buffer.from([100, 0, 100, 255, 0, 128]), { raw: { width: 3, height: 1, channels: 2 } }).png().toBuffer();
  assert.deepEqual(Array.from((await decodeImage(ga)).data), [100, 100, 100, 100, 100, 100, 0, 0, 0]);

  // A palette PNG (built by hand: encoders' quantizers rewrite transparent colours) whose entry 1 is fully transparent: the entry's colour.
  const pal = palettePng([[10, 20, 30], [200, 0, 0]], [255, 0], [0, 1, 0, 1]);
  assert.equal((await sharp(pal).metadata()).isPalette, true, "the fixture is a palette PNG");
  assert.deepEqual(Array.from((await decodeImage(pal)).data), [10, 20, 30, 200, 0, 0, 10, 20, 30, 200, 0, 0]);
});

test("GIF: the first frame of an animation", async () => {
  const frames = Buffer.concat([Buffer.alloc(4 * 3 * 3, 10), Buffer.alloc(4 * 3 * 3, 200)]);
  const gif = await sharp(frames, { raw: { width: 4, height: 6, channels: 3, pageHeight: 3 } }).gif().toBuffer();
  const m = await sharp(gif).metadata();
  assert.equal(m.pages, 2, "the fixture has two frames");
  const d = await decodeImage(gif);
  assert.deepEqual([d.width, d.height], [4, 3]);
  assert.ok(d.data.every((v) => v === 10));
});

test("EXIF orientation is applied: orientation 6 turns a stored 60x40 image upright to 40x60, top-left going to top-right", async () => {
  const px = Buffer.alloc(60 * 40 * 3);
  for (let y = 0; y < 20; y++) for (let x = 0; x < 20; x++) px[(y * 60 + x) * 3] = 255; // a red block in the stored top-left
  const jpg = await sharp(px, { raw: { width: 60, height: 40, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
  assert.equal((await sharp(jpg).metadata()).orientation, 6);
  const d = await decodeImage(jpg);
  assert.deepEqual([d.width, d.height], [40, 60]);
  const red = (x: number, y: number) => d.data[(y * d.width + x) * 3];
  assert.ok(red(36, 3) > 200, "top-right is red");
  assert.ok(red(3, 3) < 50 && red(3, 56) < 50 && red(36, 56) < 50, "the other corners are not");
});

/** A one-row, 8-bit palette PNG: `palette` RGB entries, `alpha` their tRNS values, `indices` the pixels. */
function palettePng(palette: number[][], alpha: number[], indices: number[]): Buffer {
  const chunk = (type: string, body: Uint8Array) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(body.length, 0);
    head.write(type, 4, "latin1");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
    return Buffer.concat([head, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(indices.length, 0);
  ihdr.writeUInt32BE(1, 4);
  ihdr.set([8, 3, 0, 0, 0], 8); // bit depth 8, colour type 3 (palette)
  const idat = zlib.deflateSync(Buffer.from([0, ...indices])); // filter type 0
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("PLTE", Buffer.from(palette.flat())),
    chunk("tRNS", Buffer.from(alpha)),
    chunk("IDAT", idat),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** CRC-32 (PNG's), for the hand-made header. */
function crc32(buf: Uint8Array): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

test("errors name the file: missing, a folder, corrupt, truncated, empty, unsupported format", async () => {
  await assert.rejects(decodeImage(path.join(tmp, "missing.png")), /missing\.png: image file not found/);
  await assert.rejects(decodeImage(tmp), /: not a file/);
  const corrupt = path.join(tmp, "corrupt.jpg");
  fs.writeFileSync(corrupt, "this is not a jpeg at all");
  await assert.rejects(decodeImage(corrupt), new RegExp(`${corrupt.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: not a readable image \\(unknown format, or a corrupt or truncated file\\)`));
  // A JPEG cut in the middle of its pixel data: the header reads, the pixels do not.
  const noise = Buffer.from(Uint8Array.from({ length: 96 * 64 * 3 }, (_, i) => (i * 2654435761) >>> 24));
  const big = await sharp(noise, { raw: { width: 96, height: 64, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  const truncated = path.join(tmp, "truncated.jpg");
  fs.writeFileSync(truncated, big.subarray(0, Math.floor(big.length * 0.7)));
  await assert.rejects(decodeImage(truncated), /truncated\.jpg: cannot decode jpeg image \(.*premature end/);
  await assert.rejects(decodeImage(new Uint8Array(0), { label: "row 7" }), /row 7: empty image data/);
  const svg = path.join(tmp, "drawing.svg");
  fs.writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
  await assert.rejects(decodeImage(svg), /drawing\.svg: unsupported image format 'svg' \(supported: jpeg, png, webp, gif, tiff, heif\)/);
  await assert.rejects(decodeImage(Buffer.from("BM not really a bitmap")), /<image bytes>: not a readable image/);
});

test("too many pixels: refused from the header, before decoding, with the size and the limit", async () => {
  // A 64x64 PNG whose IHDR is rewritten to claim 20000 x 20000 (400 megapixels).
  const png = Buffer.from(await sharp({ create: { width: 64, height: 64, channels: 3, background: "#000" } }).png().toBuffer());
  assert.equal(png.toString("latin1", 12, 16), "IHDR");
  png.writeUInt32BE(20000, 16);
  png.writeUInt32BE(20000, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  const bomb = path.join(tmp, "bomb.png");
  fs.writeFileSync(bomb, png);
  assert.equal((await sharp(bomb, { limitInputPixels: false }).metadata()).width, 20000, "the header really claims 20000 wide");
  const t0 = performance.now();
  await assert.rejects(decodeImage(bomb), new RegExp(`bomb\\.png: 20000x20000 = 400000000 pixels exceeds the limit of ${DEFAULT_MAX_PIXELS} pixels`));
  assert.ok(performance.now() - t0 < 2000, "refused without decoding");
  // A real image over a lowered limit.
  const file = path.join(tmp, "big.png");
  await sharp({ create: { width: 400, height: 300, channels: 3, background: "#808080" } }).png().toFile(file);
  await assert.rejects(decodeImage(file, { maxPixels: 100_000 }), /big\.png: 400x300 = 120000 pixels exceeds the limit of 100000/);
  assert.equal((await decodeImage(file, { maxPixels: 120_000 })).width, 400);
});
