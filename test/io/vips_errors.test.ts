// libvips shares one error buffer across the process: without the gate in
// src/io/vips_errors.ts, 300 concurrent decodes of cut JPEGs and PNGs gave 15
// different messages (other images' errors mixed in, or "Unknown error").
// With it, every failure names its own image's problem, and good images in
// the same batch still decode.
import assert from "node:assert/strict";
import { test } from "node:test";
import sharp from "sharp";
import { decodeImage } from "../../src/io/image_decode.js";
import { vipsReason } from "../../src/io/vips_errors.js";

async function encoded(format: "jpeg" | "png"): Promise<Buffer> {
  const raw = Buffer.alloc(64 * 64 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 251;
  const img = sharp(raw, { raw: { width: 64, height: 64, channels: 3 } });
  return format === "jpeg" ? img.jpeg({ quality: 90 }).toBuffer() : img.png().toBuffer();
}

test("concurrent decodes: each failure carries its own image's libvips error, good images decode", async () => {
  const jpeg = await encoded("jpeg");
  const png = await encoded("png");
  const cutJpeg = new Uint8Array(jpeg.subarray(0, Math.floor(jpeg.length * 0.6)));
  const cutPng = new Uint8Array(png.subarray(0, Math.floor(png.length * 0.6)));
  const kinds = Array.from({ length: 240 }, (_, i) => (["cut-jpeg", "cut-png", "good"] as const)[i % 3]);
  const results = await Promise.all(
    kinds.map((k, i) =>
      decodeImage(k === "cut-jpeg" ? cutJpeg : k === "cut-png" ? cutPng : new Uint8Array(png), { label: `img${i}` }).then(
        (d) => `ok ${d.width}x${d.height}`,
        (e: Error) => e.message,
      ),
    ),
  );
  const seen = new Map<string, Set<string>>();
  for (const [i, k] of kinds.entries()) {
    const msg = results[i].replace(`img${i}: `, "");
    if (!seen.has(k)) seen.set(k, new Set());
    seen.get(k)!.add(msg);
  }
  assert.deepEqual([...seen.get("good")!], ["ok 64x64"]);
  assert.deepEqual([...seen.get("cut-jpeg")!], ["cannot decode jpeg image (VipsJpeg: premature end of JPEG image)"]);
  assert.deepEqual([...seen.get("cut-png")!], ["cannot decode png image (vipspng: libpng read error)"]);
});

test("vipsReason: one line, repeats dropped, 'Unknown error' is no reason", () => {
  assert.equal(vipsReason(new Error("VipsJpeg: a\nVipsJpeg: a\nvipspng: b\n")), "VipsJpeg: a; vipspng: b");
  assert.equal(vipsReason(new Error("Unknown error")), "libvips gave no reason");
  assert.equal(vipsReason("plain"), "plain");
});
