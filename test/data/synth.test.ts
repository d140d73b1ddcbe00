// The synthetic demo set: byte-identical per seed, exact class and hard
// counts, stratified splits, images of the requested size that the loader
// accepts, a README that says what it is, and the local cues the normal
// subset must carry (gunmetal with a specular band for weapons, a large
// skin-tone area for nudity, neither in safe scenes) while the hard subset
// mixes look-alikes back in.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { before, describe, test } from "node:test";
import sharp from "sharp";

import { labelSetKey, loadDataset, planLabels, renderScene, Rng, synthesizeDataset, type SynthResult } from "../../src/data/index.js";
import { calmColor, calmOk, clothColor, gunColor, gunmetalLike, luma, plasticColor, safeColor, skinLike, skinTone } from "../../src/data/synth/color.js";
import type { RGB } from "../../src/data/synth/raster.js";
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

/** Per-image shares of gunmetal-like pixels, skin-like pixels, and bright pixels flanked by gunmetal 2 px away on at least two sides (the specular band). */
function cueShares(px: Uint8Array, S: number): { gun: number; skin: number; band: number } {
  const at = (x: number, y: number): RGB => {
    const o = 3 * (y * S + x);
    return [px[o] / 255, px[o + 1] / 255, px[o + 2] / 255];
  };
  let gun = 0;
  let skin = 0;
  let band = 0;
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) {
      const c = at(x, y);
      if (gunmetalLike(c)) gun++;
      if (skinLike(c)) skin++;
      if (luma(c) > 0.7) {
        let flanks = 0;
        for (const [dx, dy] of [[2, 0], [-2, 0], [0, 2], [0, -2]]) {
          const X = x + dx;
          const Y = y + dy;
          if (X >= 0 && Y >= 0 && X < S && Y < S && gunmetalLike(at(X, Y))) flanks++;
        }
        if (flanks >= 2) band++;
      }
    }
  const n = S * S;
  return { gun: gun / n, skin: skin / n, band: band / n };
}

describe("materials and cues", () => {
  test("palettes: gunmetal is always gunmetal-like; safe, calm, plastic and normal-subset clothes are neither gunmetal- nor skin-like", () => {
    const rng = new Rng(3);
    for (let k = 0; k < 500; k++) {
      assert.ok(gunmetalLike(gunColor(rng)));
      for (const c of [safeColor(rng), plasticColor(rng), clothColor(rng, false)]) assert.ok(!skinLike(c), `${c}`);
      for (const c of [safeColor(rng), clothColor(rng, false)]) assert.ok(!gunmetalLike(c), `${c}`);
      assert.ok(calmOk(calmColor(rng)));
      assert.ok(skinLike(skinTone(rng)));
    }
  });

  const S = 64;
  const sample = (labels: string[], hard: boolean) => Array.from({ length: 24 }, (_, k) => cueShares(renderScene({ labels, hard, size: S }, new Rng(300 + k)).pixels, S));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

  test("normal scenes: weapons show gunmetal with a specular band, unclothed figures a large skin area, safe scenes neither", () => {
    const safe = sample([], false);
    const weapons = sample(["weapons"], false);
    const nudity = sample(["nudity"], false);
    const m = (xs: { gun: number; skin: number; band: number }[], k: "gun" | "skin" | "band") => mean(xs.map((x) => x[k]));
    // measured (seeds 300..323): gun 0.072 / 0.0003 / 0.0001, band 0.0048 / 0 / 0, skin 0.077 / 0.017 / 0.21 (weapons / safe / nudity)
    assert.ok(m(weapons, "gun") >= 0.04 && m(weapons, "gun") > 20 * m(safe, "gun"), `gunmetal: weapons ${m(weapons, "gun")}, safe ${m(safe, "gun")}`);
    assert.ok(m(weapons, "band") >= 0.002 && m(safe, "band") <= 0.0005 && m(nudity, "band") <= 0.0005, `band: ${m(weapons, "band")} ${m(safe, "band")} ${m(nudity, "band")}`);
    assert.ok(m(nudity, "skin") >= 0.12 && m(nudity, "skin") > 5 * m(safe, "skin"), `skin: nudity ${m(nudity, "skin")}, safe ${m(safe, "skin")}`);
    assert.ok(m(nudity, "gun") < 0.005, `gunmetal in nudity scenes ${m(nudity, "gun")}`);
    // per image, not only on average
    assert.ok(weapons.filter((x) => x.gun >= 0.01).length >= 20, `weapons with >= 1% gunmetal: ${weapons.map((x) => x.gun.toFixed(3))}`);
    assert.ok(nudity.filter((x) => x.skin >= 0.06).length >= 20, `nudity with >= 6% skin: ${nudity.map((x) => x.skin.toFixed(3))}`);
    assert.ok(safe.every((x) => x.gun < 0.02 && x.band < 0.002), `safe: ${JSON.stringify(safe)}`);
  });

  test("hard scenes mix look-alikes in: safe scenes with much gunmetal or skin-like area", () => {
    const lookalike = (x: { gun: number; skin: number }) => x.gun >= 0.03 || x.skin >= 0.2;
    const hard = sample([], true).filter(lookalike).length;
    const normal = sample([], false).filter(lookalike).length;
    assert.ok(hard >= 4, `hard safe look-alikes: ${hard} of 24`);
    assert.equal(normal, 0);
  });
});
