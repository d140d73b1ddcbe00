// Every reader yields the same examples for the same tiny dataset (fixtures
// from scripts/fixtures/make_data_fixtures.mjs), and the format is picked
// from the path as documented in load.ts.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { before, describe, test } from "node:test";

import { detectFormat, loadDataset, splitFromParquetPath, type Dataset, type Example } from "../../src/data/index.js";
import { TINY, tempDir, writePng, writeText } from "./helpers.js";

const CATS = ["nudity", "weapons"];

/** What must agree across formats: id, labels, split and the image's bytes. */
function summary(ds: Dataset, withSplit = true) {
  const bytesOf = (e: Example) => ("path" in e.image ? fs.readFileSync(e.image.path) : Buffer.from(e.image.bytes));
  return ds.examples
    .map((e) => ({
      id: e.id,
      labels: e.labels,
      ...(withSplit ? { split: e.split ?? null } : {}),
      sha: createHash("sha256").update(bytesOf(e)).digest("hex").slice(0, 16),
      size: e.size,
    }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

const EXPECTED = [
  { id: "nudity+weapons/both.png", labels: ["nudity", "weapons"], split: null },
  { id: "nudity/figure.png", labels: ["nudity"], split: "val" },
  { id: "safe/beach.png", labels: [], split: "train" },
  { id: "safe/desk.png", labels: [], split: "test" },
  { id: "weapons/knife.png", labels: ["weapons"], split: "train" },
  { id: "weapons/rifle, long.png", labels: ["weapons"], split: null },
];

describe("the tiny dataset in four formats", () => {
  let jsonl: Dataset, csv: Dataset, parquet: Dataset, folder: Dataset;
  before(async () => {
    jsonl = await loadDataset(path.join(TINY, "manifest.jsonl"), { categories: CATS });
    csv = await loadDataset(path.join(TINY, "manifest.csv"), { categories: CATS });
    parquet = await loadDataset(path.join(TINY, "tiny.parquet"), { categories: CATS });
    folder = await loadDataset(TINY, { categories: CATS, format: "folder" });
  });

  test("JSONL gives the expected ids, labels (in category order), splits and image sizes", () => {
    assert.equal(jsonl.format, "jsonl");
    assert.equal(jsonl.root, TINY);
    assert.deepEqual(jsonl.dropped, []);
    assert.deepEqual(
      summary(jsonl).map(({ id, labels, split }) => ({ id, labels, split })),
      EXPECTED,
    );
    const sizes = Object.fromEntries(jsonl.examples.map((e) => [e.id, e.size]));
    assert.deepEqual(sizes["safe/beach.png"], { width: 8, height: 6 });
    assert.deepEqual(sizes["nudity/figure.png"], { width: 6, height: 12 });
    // paths are absolute, resolved against the manifest's folder
    const knife = jsonl.examples.find((e) => e.id === "weapons/knife.png")!;
    assert.deepEqual(knife.image, { path: path.join(TINY, "weapons/knife.png") });
    assert.deepEqual(knife.source, { file: path.join(TINY, "manifest.jsonl"), line: 3 });
  });

  test("CSV (quoted comma in a name, `;` / `|` / JSON-list label cells) equals JSONL", () => {
    assert.equal(csv.format, "csv");
    assert.deepEqual(summary(csv), summary(jsonl));
  });

  test("parquet with embedded image bytes equals JSONL (same bytes, labels, splits)", () => {
    assert.equal(parquet.format, "parquet");
    assert.deepEqual(summary(parquet), summary(jsonl));
    const first = parquet.examples[0];
    assert.ok("bytes" in first.image && first.image.bytes instanceof Uint8Array);
    assert.equal((first.image as { name?: string }).name, "beach.png");
    assert.deepEqual(first.source, { file: path.join(TINY, "tiny.parquet"), row: 0 });
  });

  test("the image folder equals JSONL except for splits (it has none); non-images are listed as ignored", () => {
    assert.equal(folder.format, "folder");
    assert.deepEqual(summary(folder, false), summary(jsonl, false));
    assert.ok(folder.examples.every((e) => e.split === undefined));
    assert.deepEqual(folder.ignoredFiles.sort(), ["label_int.parquet", "label_int_nometa.parquet", "manifest.csv", "manifest.jsonl", "tiny.parquet"]);
  });
});

describe("parquet details", () => {
  test("an int `label` column maps through the ClassLabel names in the file's metadata ('safe' = no category)", async () => {
    const ds = await loadDataset(path.join(TINY, "label_int.parquet"), { categories: CATS });
    assert.deepEqual(
      ds.examples.map((e) => [e.id, e.labels]),
      [
        ["safe/beach.png", []],
        ["safe/desk.png", []],
        ["weapons/knife.png", ["weapons"]],
        ["weapons/rifle, long.png", ["weapons"]],
        ["nudity/figure.png", ["nudity"]],
      ],
    );
    assert.deepEqual(ds.examples[4].image, { path: path.join(TINY, "nudity/figure.png") });
  });

  test("labelNames overrides the metadata", async () => {
    const ds = await loadDataset(path.join(TINY, "label_int.parquet"), { categories: CATS, labelNames: ["safe", "weapons", "nudity"] });
    assert.deepEqual(
      ds.examples.map((e) => e.labels),
      [[], [], ["nudity"], ["nudity"], ["weapons"]],
    );
  });

  test("class indices without names are bad rows that say to pass labelNames", async () => {
    const file = path.join(TINY, "label_int_nometa.parquet");
    await assert.rejects(loadDataset(file, { categories: CATS }), (e: Error) => {
      assert.match(e.message, /5 bad rows/);
      assert.ok(e.message.includes(`${file}: row 0: 'label' holds the class index 0`), e.message);
      assert.match(e.message, /data\.label_map/);
      return true;
    });
    const ds = await loadDataset(file, { categories: CATS, labelNames: ["safe", "nudity", "weapons"] });
    assert.equal(ds.examples.length, 5);
  });

  test("a folder of shards: without a split column, the split comes from each file's name or folder", async () => {
    const dir = tempDir("shards");
    const images = (src: string) => !src.endsWith(".parquet") && !src.includes("manifest");
    // shard 1 at dir/data/, shard 2 at dir/data/more/test/, each next to its own copy of the images
    fs.cpSync(TINY, path.join(dir, "data"), { recursive: true, filter: images });
    fs.cpSync(TINY, path.join(dir, "data/more/test"), { recursive: true, filter: images });
    fs.copyFileSync(path.join(TINY, "label_int.parquet"), path.join(dir, "data", "validation-00000-of-00001.parquet"));
    fs.copyFileSync(path.join(TINY, "label_int.parquet"), path.join(dir, "data/more/test", "0000.parquet"));
    const ds = await loadDataset(dir, { categories: CATS });
    assert.equal(ds.format, "parquet");
    assert.equal(ds.examples.length, 10);
    assert.deepEqual(
      ds.examples.map((e) => e.split),
      [...Array(5).fill("test"), ...Array(5).fill("val")],
    );
    assert.equal(ds.examples[0].id, "data/more/test/safe/beach.png");
    assert.equal(ds.examples[5].id, "data/safe/beach.png");
  });

  test("bytes images without an id column get `<file>#<row>` ids", async () => {
    const dir = tempDir("pq-ids");
    // tiny.parquet has an id column; read it through the raw reader and drop the ids
    const { readParquetRows, validateRows } = await import("../../src/data/index.js");
    const rows = (await readParquetRows([path.join(TINY, "tiny.parquet")])).map((r) => ({ ...r, id: undefined, base: dir, source: { ...r.source, file: path.join(dir, "tiny.parquet") } }));
    const { examples, bad } = await validateRows(rows, { categories: CATS, root: dir });
    assert.deepEqual(bad, []);
    assert.deepEqual(
      examples.map((e) => e.id),
      [0, 1, 2, 3, 4, 5].map((k) => `tiny.parquet#${k}`),
    );
  });

  test("splitFromParquetPath reads Hub-style names and folders", () => {
    assert.equal(splitFromParquetPath("/d/train-00000-of-00004.parquet"), "train");
    assert.equal(splitFromParquetPath("/d/validation.parquet"), "val");
    assert.equal(splitFromParquetPath("/d/test/0000.parquet"), "test");
    assert.equal(splitFromParquetPath("/d/data/0000.parquet"), undefined);
    assert.equal(splitFromParquetPath("/d/trainee.parquet"), undefined);
  });
});

describe("image folder layouts", () => {
  test("split folders, nested files, multi-label folders, ignored files", async () => {
    const dir = tempDir("folder");
    await writePng(path.join(dir, "train/safe/a.png"));
    await writePng(path.join(dir, "train/weapons/deep/er/b.PNG"));
    await writePng(path.join(dir, "validation/nudity/c.jpg.png"));
    await writePng(path.join(dir, "test/nudity+weapons/d.png"));
    writeText(path.join(dir, "train/weapons/notes.txt"), "not an image");
    writeText(path.join(dir, "train/safe/.DS_Store"), "");
    const ds = await loadDataset(dir, { categories: CATS });
    assert.equal(ds.format, "folder");
    assert.deepEqual(
      ds.examples.map((e) => [e.id, e.labels, e.split]),
      [
        ["test/nudity+weapons/d.png", ["nudity", "weapons"], "test"],
        ["train/safe/a.png", [], "train"],
        ["train/weapons/deep/er/b.PNG", ["weapons"], "train"],
        ["validation/nudity/c.jpg.png", ["nudity"], "val"],
      ],
    );
    assert.deepEqual(ds.ignoredFiles.sort(), ["train/safe/.DS_Store", "train/weapons/notes.txt"]);
  });

  test("an image outside any category folder is a bad row", async () => {
    const dir = tempDir("folder-loose");
    await writePng(path.join(dir, "safe/a.png"));
    await writePng(path.join(dir, "loose.png"));
    const ds = await loadDataset(dir, { categories: CATS, onBadRow: "skip" });
    assert.equal(ds.examples.length, 1);
    assert.equal(ds.dropped.length, 1);
    assert.equal(ds.dropped[0].source.file, path.join(dir, "loose.png"));
    assert.match(ds.dropped[0].reason, /not inside a category folder/);
  });
});

describe("detectFormat", () => {
  test("file extensions, and a folder's manifest before its parquet files before an image folder", () => {
    assert.equal(detectFormat(path.join(TINY, "manifest.csv")).format, "csv");
    assert.equal(detectFormat(path.join(TINY, "tiny.parquet")).format, "parquet");
    const dir = tempDir("detect");
    writeText(path.join(dir, "manifest.jsonl"), "");
    writeText(path.join(dir, "x.parquet"), "");
    assert.deepEqual(detectFormat(dir), { format: "jsonl", files: [path.join(dir, "manifest.jsonl")], root: dir });
    assert.equal(detectFormat(dir, "parquet").files[0], path.join(dir, "x.parquet"));
    fs.rmSync(path.join(dir, "manifest.jsonl"));
    assert.equal(detectFormat(dir).format, "parquet");
    fs.rmSync(path.join(dir, "x.parquet"));
    assert.equal(detectFormat(dir).format, "folder");
  });

  test("errors name the path and what was expected", () => {
    const dir = tempDir("detect-err");
    writeText(path.join(dir, "manifest.jsonl"), "");
    writeText(path.join(dir, "manifest.csv"), "");
    assert.throws(() => detectFormat(dir), /holds both manifest.jsonl and manifest.csv/);
    const txt = writeText(path.join(dir, "list.txt"), "");
    assert.throws(() => detectFormat(txt), (e: Error) => e.message.includes(txt) && /expected .jsonl, .csv or .parquet/.test(e.message));
    assert.throws(() => detectFormat(path.join(dir, "nope")), /dataset path not found/);
    assert.throws(() => detectFormat(dir, "folder" as const) && detectFormat(txt, "folder"), /needs a folder/);
  });
});
