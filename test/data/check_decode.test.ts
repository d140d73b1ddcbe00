// `vlm-grpo data check` decodes every image in full and exits non-zero when
// any row is bad; training's loader refuses exactly the same rows. A JPEG or
// PNG cut short after its header passes a header-only check (sharp's
// metadata) but not this one.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { loadDataset } from "../../src/data/index.js";
import { jsonl, tempDir, writePng, writeText } from "./helpers.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const CATS = ["nudity", "weapons"];

/** A 64x64 textured image, encoded, then cut to `frac` of its bytes. */
async function truncated(file: string, format: "jpeg" | "png", frac: number): Promise<string> {
  const raw = Buffer.alloc(64 * 64 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 251;
  const img = sharp(raw, { raw: { width: 64, height: 64, channels: 3 } });
  const buf = format === "jpeg" ? await img.jpeg({ quality: 90 }).toBuffer() : await img.png().toBuffer();
  fs.writeFileSync(file, buf.subarray(0, Math.floor(buf.length * frac)));
  return file;
}

test("data check: truncated JPEG/PNG and other bad rows are listed, exit code 3; the loader agrees; a clean set exits 0", async () => {
  const dir = tempDir("check-decode");
  await writePng(path.join(dir, "ok1.png"), 6, 5);
  await writePng(path.join(dir, "ok2.png"), 7, 5);
  const tj = await truncated(path.join(dir, "cut.jpg"), "jpeg", 0.6);
  const tp = await truncated(path.join(dir, "cut.png"), "png", 0.6);
  // The reason for decoding in full: the header of a cut file still reads.
  for (const f of [tj, tp]) assert.deepEqual([(await sharp(f).metadata()).width, (await sharp(f).metadata()).height], [64, 64]);
  const manifest = writeText(
    path.join(dir, "manifest.jsonl"),
    jsonl([
      { image: "ok1.png", labels: [] },
      { image: "cut.jpg", labels: ["weapons"] },
      { image: "ok2.png", labels: ["nudity"] },
      { image: "cut.png", labels: [] },
      { image: "gone.png", labels: [] },
    ]),
  );
  const r = spawnSync(process.execPath, [MAIN, "data", "check", manifest], { encoding: "utf8" });
  assert.equal(r.status, 3, r.stderr + r.stdout);
  assert.match(r.stdout, /rows: 5, kept: 2, dropped: 3/);
  assert.match(r.stdout, /manifest\.jsonl:2: image cut\.jpg: cannot decode jpeg image \(VipsJpeg: premature end of JPEG image\)/);
  assert.match(r.stdout, /manifest\.jsonl:4: image cut\.png: cannot decode png image/);
  assert.match(r.stdout, /manifest\.jsonl:5: image file not found/);
  // Training's loader (on_bad_row: fail) refuses the same three rows, naming them.
  await assert.rejects(loadDataset(manifest, { categories: CATS, onBadRow: "fail" }), (e: Error) => {
    assert.match(e.message, /3 bad rows \(unreadable_image: 2, missing_image: 1\)/);
    assert.match(e.message, /:2: image cut\.jpg: cannot decode/);
    assert.match(e.message, /:4: image cut\.png: cannot decode/);
    return true;
  });
  const skipped = await loadDataset(manifest, { categories: CATS, onBadRow: "skip" });
  assert.deepEqual(skipped.examples.map((e) => e.id), ["ok1.png", "ok2.png"]);

  const clean = writeText(path.join(dir, "clean.jsonl"), jsonl([{ image: "ok1.png", labels: [] }, { image: "ok2.png", labels: ["nudity"] }]));
  const ok = spawnSync(process.execPath, [MAIN, "data", "check", clean], { encoding: "utf8" });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /no bad rows/);
  // The config's data section (here a label map given as a flag) is what check uses.
  const mapped = writeText(path.join(dir, "mapped.jsonl"), jsonl([{ image: "ok1.png", labels: ["neutral"] }, { image: "ok2.png", labels: ["porn"] }]));
  assert.equal(spawnSync(process.execPath, [MAIN, "data", "check", mapped], { encoding: "utf8" }).status, 1); // every row bad: nothing to use
  const withMap = spawnSync(process.execPath, [MAIN, "data", "check", mapped, "--data.label_map", '{"neutral": "safe", "porn": "nudity"}'], { encoding: "utf8" });
  assert.equal(withMap.status, 0, withMap.stderr);
});
