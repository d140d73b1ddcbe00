// data.label_map in every format: a dataset labelled neutral / porn / weapon
// (its own vocabulary) is read as safe / nudity / weapons from JSONL, CSV,
// folder names, Parquet strings, Parquet ClassLabel ids (a file written by
// Hugging Face `datasets`: scripts/fixtures/make_label_map_fixtures.py) and HF
// imagefolder metadata.csv / metadata.jsonl; unmapped labels fail with a
// message that suggests the map; the report shows Parquet-held images.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { loadDataset, loadSplits } from "../../src/data/index.js";
import { computeMetrics, type Prediction } from "../../src/eval/metrics.js";
import { writeReport } from "../../src/eval/report.js";
import { FIXTURES, jsonl, tempDir, writePng, writeText } from "./helpers.js";

const CATS = ["nudity", "weapons"];
const MAP = { neutral: "safe", porn: "nudity", weapon: "weapons" };
const LABELMAP = path.join(FIXTURES, "labelmap");
/** id -> labels ("safe" for none), sorted by id. */
const summary = (ds: { examples: { id: string; labels: string[] }[] }) =>
  Object.fromEntries(ds.examples.map((e) => [e.id, e.labels.join("+") || "safe"]).sort((a, b) => (a[0] < b[0] ? -1 : 1)));

describe("label maps", () => {
  const dir = tempDir("labelmap");
  const imgs = ["a.png", "b.png", "c.png", "d.png"];
  const labels = ["neutral", "porn", "weapon", "porn|weapon"];
  const expected = { "a.png": "safe", "b.png": "nudity", "c.png": "weapons", "d.png": "nudity+weapons" };

  test("JSONL and CSV manifests", async () => {
    for (const f of imgs) await writePng(path.join(dir, "m", f));
    const j = writeText(path.join(dir, "m", "manifest.jsonl"), jsonl(imgs.map((image, i) => ({ image, labels: labels[i].split("|") }))));
    const c = writeText(path.join(dir, "m", "manifest.csv"), `image,labels\n${imgs.map((f, i) => `${f},${labels[i]}`).join("\n")}\n`);
    for (const file of [j, c]) {
      assert.deepEqual(summary(await loadDataset(file, { categories: CATS, labelMap: MAP })), expected, file);
      await assert.rejects(loadDataset(file, { categories: CATS }), (e: Error) => {
        assert.match(e.message, /unknown category 'neutral'.*map them with data\.label_map, e\.g\. \{neutral: nudity\} or \{neutral: safe\}/);
        return true;
      });
    }
    // Case-insensitive match when no exact key exists; map values must be categories or safe.
    assert.deepEqual(summary(await loadDataset(j, { categories: CATS, labelMap: { NEUTRAL: "safe", Porn: "nudity", WEAPON: "weapons" } })), expected);
    await assert.rejects(loadDataset(j, { categories: CATS, labelMap: { porn: "nsfw" } }), /data\.label_map: 'porn' maps to "nsfw", which is not a category \(nudity, weapons\) or 'safe'/);
  });

  test("image folder names (including + for several)", async () => {
    const root = path.join(dir, "folder");
    await writePng(path.join(root, "neutral", "a.png"));
    await writePng(path.join(root, "porn", "b.png"));
    await writePng(path.join(root, "weapon", "c.png"));
    await writePng(path.join(root, "porn+weapon", "d.png"));
    const ds = await loadDataset(root, { categories: CATS, labelMap: MAP });
    assert.deepEqual(summary(ds), { "neutral/a.png": "safe", "porn+weapon/d.png": "nudity+weapons", "porn/b.png": "nudity", "weapon/c.png": "weapons" });
  });

  test("Parquet string labels and ClassLabel ids, written by Hugging Face datasets", async () => {
    const want = { n1: "safe", n2: "safe", p1: "nudity", w1: "weapons" };
    for (const f of ["strings.parquet", "classlabel.parquet"]) {
      const ds = await loadDataset(path.join(LABELMAP, f), { categories: CATS, labelMap: MAP });
      assert.deepEqual(summary(ds), want, f);
      assert.ok(ds.examples.every((e) => "bytes" in e.image && e.size?.width === 12 && e.size.height === 10));
      await assert.rejects(loadDataset(path.join(LABELMAP, f), { categories: CATS }), /unknown category 'neutral'.*data\.label_map/);
    }
  });

  test("Parquet class ids without names go through the map by their number", async () => {
    const ds = await loadDataset(path.join(FIXTURES, "tiny", "label_int_nometa.parquet"), { categories: CATS, labelMap: { "0": "safe", "1": "weapons", "2": "nudity" } });
    assert.ok(ds.examples.length > 0 && ds.dropped.length === 0);
  });

  test("HF imagefolder metadata.csv and metadata.jsonl (file_name + label), also per split folder", async () => {
    const csvRoot = path.join(dir, "hf-csv");
    for (const f of imgs) await writePng(path.join(csvRoot, "pics", f));
    writeText(path.join(csvRoot, "metadata.csv"), `file_name,label,caption\n${imgs.map((f, i) => `pics/${f},${labels[i]},"a, b"`).join("\n")}\n`);
    const dsCsv = await loadDataset(csvRoot, { categories: CATS, labelMap: MAP });
    assert.equal(dsCsv.format, "folder");
    assert.deepEqual(summary(dsCsv), Object.fromEntries(Object.entries(expected).map(([k, v]) => [`pics/${k}`, v])));

    const jRoot = path.join(dir, "hf-jsonl");
    await writePng(path.join(jRoot, "train", "a.png"));
    await writePng(path.join(jRoot, "train", "b.png"));
    await writePng(path.join(jRoot, "test", "c.png"));
    writeText(path.join(jRoot, "train", "metadata.jsonl"), jsonl([{ file_name: "a.png", label: "neutral" }, { file_name: "b.png", label: 1 }]));
    writeText(path.join(jRoot, "test", "metadata.jsonl"), jsonl([{ file_name: "c.png", labels: ["weapon", "porn"] }]));
    const ds = await loadDataset(jRoot, { categories: CATS, labelMap: { ...MAP, "1": "nudity" } });
    assert.deepEqual(
      ds.examples.map((e) => [e.id, e.labels.join("+") || "safe", e.split]),
      [
        ["test/c.png", "nudity+weapons", "test"],
        ["train/a.png", "safe", "train"],
        ["train/b.png", "nudity", "train"],
      ],
    );
    // Split folders in name order. An integer label that the map does not name, and an image without a row, are bad rows naming the problem.
    await writePng(path.join(jRoot, "train", "extra.png"));
    const bad = await loadDataset(jRoot, { categories: CATS, labelMap: MAP, onBadRow: "skip" });
    assert.deepEqual(
      bad.dropped.map((d) => [path.basename(d.source.file), d.kind]),
      [
        ["metadata.jsonl", "bad_labels"],
        ["extra.png", "bad_labels"],
      ],
    );
    assert.match(bad.dropped[0].reason, /labels\[0\] is number 1.*data\.label_map, e\.g\. \{'1': safe\}/);
    assert.match(bad.dropped[1].reason, /no row in .*metadata\.jsonl/);
    // The run config's data.label_map reaches the loader (what training uses).
    const s = await loadSplits({ path: csvRoot, format: "auto", categories: CATS, label_map: MAP, on_bad_row: "fail", split_seed: 0, val_fraction: 0, test_fraction: 0 });
    assert.equal(s.train.length, 4);
  });

  test("report thumbnails for Parquet-held images (bytes, no path)", async () => {
    const ds = await loadDataset(path.join(LABELMAP, "strings.parquet"), { categories: CATS, labelMap: MAP });
    // Every offensive image missed, so each gets a thumbnail.
    const preds: Prediction[] = ds.examples.map((e) => ({ id: e.id, labels: e.labels, predicted: { kind: "safe" }, score: 0.1 }));
    const byId = new Map(ds.examples.map((e) => [e.id, e.image]));
    const out = tempDir("pq-report");
    const file = await writeReport(out, {
      runs: [{ name: "m", metrics: computeMetrics(preds, { categories: CATS }), predictions: preds }],
      categories: CATS,
      imageOf: (p) => {
        const ref = byId.get(p.id)!;
        return "path" in ref ? ref.path : ref.bytes;
      },
    });
    const html = fs.readFileSync(file, "utf8");
    assert.equal((html.match(/<img src="data:image\/jpeg;base64,/g) ?? []).length, 2, "p1 and w1 are misses with thumbnails");
    assert.ok(!html.includes("no image"));
  });
});
