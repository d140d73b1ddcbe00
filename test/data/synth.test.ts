// The synthetic demo set: byte-identical per seed, exact class and hard
// counts, stratified splits, images of the requested size that the loader
// accepts, and a README that says what it is.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { before, describe, test } from "node:test";
import sharp from "sharp";

import { labelSetKey, loadDataset, planLabels, renderScene, Rng, synthesizeDataset, type SynthResult } from "../../src/data/index.js";
import { tempDir } from "./helpers.js";

const root = tempDir("synth");

/** sha256 of every file under dir, by relative path. */
function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = createHash("sha256").update(fs.readFileSync(p)).digest("hex");
    }
  };
  walk(dir);
  return out;
}

interface Line {
  id: string;
  image: string;
  labels: string[];
  split: string;
  hard: boolean;
  objects: string[];
}
const readManifest = (dir: string): Line[] =>
  fs
    .readFileSync(path.join(dir, "manifest.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));

describe("synthesizeDataset", () => {
  const opts = { n: 200, offensiveRate: 0.3, imageSize: 48, hardFraction: 0.2 };
  let a: SynthResult;
  before(async () => {
    a = await synthesizeDataset({ outDir: path.join(root, "a"), seed: 1, ...opts });
  });

  test("same seed, same bytes; another seed, other images", async () => {
    await synthesizeDataset({ outDir: path.join(root, "b"), seed: 1, ...opts });
    await synthesizeDataset({ outDir: path.join(root, "c"), seed: 2, ...opts });
    const ha = hashTree(path.join(root, "a"));
    const hb = hashTree(path.join(root, "b"));
    const hc = hashTree(path.join(root, "c"));
    assert.equal(Object.keys(ha).length, 200 + 2);
    assert.deepEqual(ha, hb);
    assert.notEqual(ha["manifest.jsonl"], hc["manifest.jsonl"]);
    const sameImages = Object.keys(ha).filter((k) => k.startsWith("images/") && ha[k] === hc[k]).length;
    assert.equal(sameImages, 0);
  });

  test("class counts follow offensiveRate exactly (15% of offensive carry both), hard per group", () => {
    // 200 * 0.3 = 60 offensive: both round(9) = 9, weapons round(25.5) = 26, nudity 25; safe 140
    assert.deepEqual(a.perLabelSet, { safe: 140, weapons: 26, nudity: 25, "nudity+weapons": 9 });
    const lines = readManifest(path.join(root, "a"));
    const hardBy: Record<string, number> = {};
    for (const l of lines) if (l.hard) hardBy[labelSetKey(l)] = (hardBy[labelSetKey(l)] ?? 0) + 1;
    // round(0.2 * group size)
    assert.deepEqual(hardBy, { safe: 28, weapons: 5, nudity: 5, "nudity+weapons": 2 });
    assert.equal(a.hard, 40);
    // the objects drawn match the labels
    const WEAPON = new Set(["knife", "pistol", "rifle"]);
    for (const l of lines) {
      assert.equal(
        l.objects.some((o) => WEAPON.has(o)),
        l.labels.includes("weapons"),
        JSON.stringify(l),
      );
      assert.equal(l.objects.includes("nude_figure"), l.labels.includes("nudity"), JSON.stringify(l));
    }
  });

  test("splits are stratified on label set + hard: each stratum within one of 80 / 10 / 10", () => {
    const lines = readManifest(path.join(root, "a"));
    const strata: Record<string, Record<string, number>> = {};
    for (const l of lines) {
      const k = `${labelSetKey(l)}/${l.hard}`;
      strata[k] ??= { train: 0, val: 0, test: 0 };
      strata[k][l.split]++;
    }
    for (const [k, c] of Object.entries(strata)) {
      const n = c.train + c.val + c.test;
      for (const [s, f] of Object.entries({ train: 0.8, val: 0.1, test: 0.1 })) assert.ok(Math.abs(c[s] - f * n) < 1, `${k} ${s}: ${c[s]} of ${n}`);
    }
    assert.equal(a.perSplit.train + a.perSplit.val + a.perSplit.test, 200);
  });

  test("every image is an RGB PNG of the requested size, and the loader accepts the set", async () => {
    const dir = path.join(root, "a");
    const ds = await loadDataset(dir, { categories: ["nudity", "weapons"] });
    assert.equal(ds.format, "jsonl");
    assert.equal(ds.examples.length, 200);
    assert.deepEqual(ds.dropped, []);
    assert.ok(ds.examples.every((e) => e.size?.width === 48 && e.size.height === 48));
    const meta = await sharp(path.join(dir, "images", "00000.png")).metadata();
    assert.equal(meta.format, "png");
    assert.equal(meta.channels, 3);
    assert.equal(ds.examples.filter((e) => e.hard).length, 40);
  });

  test("the README says it is a procedural stand-in", () => {
    const text = fs.readFileSync(path.join(root, "a", "README.md"), "utf8");
    assert.match(text, /procedural stand-in, not real data/);
    assert.match(text, /seed=1/);
  });

  test("a non-empty folder is refused unless overwrite; bad options are named", async () => {
    const dir = path.join(root, "a");
    await assert.rejects(synthesizeDataset({ outDir: dir, n: 4 }), /is not empty; choose an empty folder or pass overwrite/);
    const r = await synthesizeDataset({ outDir: dir, n: 4, imageSize: 32, overwrite: true });
    assert.equal(fs.readdirSync(path.join(dir, "images")).length, 4);
    assert.equal(r.n, 4);
    await assert.rejects(synthesizeDataset({ outDir: path.join(root, "x"), offensiveRate: 1.5 }), /offensiveRate must be in \[0, 1\], got 1.5/);
    await assert.rejects(synthesizeDataset({ outDir: path.join(root, "x"), imageSize: 8 }), /imageSize must be an integer in \[16, 1024\]/);
    await assert.rejects(synthesizeDataset({ outDir: path.join(root, "x"), n: 0 }), /n must be a positive integer/);
  });
});

describe("scenes", () => {
  test("planLabels: exact group sizes for any n, shuffled by seed", () => {
    const p = planLabels(600, 0.3, 0.15, 0.2, 0);
    const count = (pred: (x: { labels: string[]; hard: boolean }) => boolean) => p.filter(pred).length;
    assert.equal(count((x) => x.labels.length === 0), 420);
    assert.equal(count((x) => x.labels.length === 2), 27);
    assert.equal(count((x) => x.labels.join() === "weapons"), 77);
    assert.equal(count((x) => x.labels.join() === "nudity"), 76);
    assert.notDeepEqual(planLabels(600, 0.3, 0.15, 0.2, 1), p);
    assert.equal(planLabels(10, 0, 0.15, 0, 0).every((x) => x.labels.length === 0 && !x.hard), true);
  });

  test("renderScene is a pure function of its generator", () => {
    const spec = { labels: ["weapons"], hard: false, size: 40 };
    const x = renderScene(spec, new Rng(5));
    const y = renderScene(spec, new Rng(5));
    assert.equal(x.pixels.length, 40 * 40 * 3);
    assert.deepEqual(x.pixels, y.pixels);
    assert.deepEqual(x.objects, y.objects);
    assert.ok(["knife", "pistol", "rifle"].includes(x.objects[0]));
  });

  test("normal scenes show a large, barely hidden subject; hard ones a small, partly hidden one", () => {
    const stats = (hard: boolean, labels: string[]) => {
      const xs = Array.from({ length: 30 }, (_, k) => renderScene({ labels, hard, size: 64 }, new Rng(1000 + k)));
      return { meanArea: xs.reduce((a, x) => a + x.subjectArea, 0) / xs.length, minArea: Math.min(...xs.map((x) => x.subjectArea)), hidden: xs.map((x) => x.hidden) };
    };
    for (const labels of [["weapons"], ["nudity"]]) {
      const normal = stats(false, labels);
      const hard = stats(true, labels);
      assert.ok(normal.hidden.every((h) => h <= 0.15), `${labels}: normal hidden ${normal.hidden}`);
      assert.ok(hard.hidden.every((h) => h === 0 || (h >= 0.15 && h <= 0.4)), `${labels}: hard hidden ${hard.hidden}`);
      assert.ok(hard.hidden.filter((h) => h > 0).length >= 20, `${labels}: most hard scenes get an occluder`);
      assert.ok(normal.minArea > 0.02, `${labels}: normal min area ${normal.minArea}`);
      assert.ok(normal.meanArea > 3 * hard.meanArea, `${labels}: normal ${normal.meanArea} vs hard ${hard.meanArea}`);
    }
  });
});
