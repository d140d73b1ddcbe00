// runDataCheck: counts per class and split, image size stats, dropped rows, printed report.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, test } from "node:test";

import { runDataCheck, stat3 } from "../../src/data/index.js";
import { jsonl, TINY, tempDir, writePng, writeText } from "./helpers.js";

const CATS = ["nudity", "weapons"];

describe("runDataCheck", () => {
  test("the tiny dataset: counts per class and split, sizes, printed table", async () => {
    const lines: string[] = [];
    const r = await runDataCheck(path.join(TINY, "manifest.jsonl"), { categories: CATS, log: (l) => lines.push(l) });
    assert.equal(r.ok, true);
    assert.equal(r.format, "jsonl");
    assert.equal(r.rows, 6);
    assert.deepEqual(r.total, { examples: 6, perClass: { safe: 2, nudity: 2, weapons: 3 } });
    assert.deepEqual(r.perLabelSet, { safe: 2, weapons: 2, nudity: 1, "nudity+weapons": 1 });
    assert.deepEqual(r.perSplit.train, { examples: 2, perClass: { safe: 1, nudity: 0, weapons: 1 } });
    assert.deepEqual(r.perSplit.val, { examples: 1, perClass: { safe: 0, nudity: 1, weapons: 0 } });
    assert.deepEqual(r.perSplit.test, { examples: 1, perClass: { safe: 1, nudity: 0, weapons: 0 } });
    assert.deepEqual(r.perSplit.unassigned, { examples: 2, perClass: { safe: 0, nudity: 1, weapons: 2 } });
    // widths 8 10 12 16 6 9, heights 6 10 8 16 12 9 (see make_data_fixtures.mjs)
    assert.deepEqual(r.imageSize, { width: { min: 6, median: 9, max: 16 }, height: { min: 6, median: 9, max: 16 } });
    const text = lines.join("\n");
    assert.match(text, /rows: 6, kept: 6, dropped: 0/);
    assert.match(text, /^weapons\s+3\s+1\s+0\s+0\s+2\s+\(50\.0% of all\)$/m);
    assert.match(text, /image width {2}min\/median\/max: 6 \/ 9 \/ 16 px/);
    assert.match(text, /no bad rows/);
  });

  test("bad rows are skipped by default, counted, and listed with file:line", async () => {
    const dir = tempDir("check");
    await writePng(path.join(dir, "a.png"), 5, 7);
    const f = writeText(path.join(dir, "m.jsonl"), jsonl([{ image: "a.png", labels: ["weapons"], split: "val", hard: true }, { image: "b.png", labels: [] }, { image: "a.png", labels: ["drugs"], id: "z" }]));
    const lines: string[] = [];
    const r = await runDataCheck(f, { categories: CATS, log: (l) => lines.push(l) });
    assert.equal(r.ok, false);
    assert.equal(r.rows, 3);
    assert.equal(r.total.examples, 1);
    assert.equal(r.hard, 1);
    assert.deepEqual(r.droppedByKind, { missing_image: 1, unknown_category: 1 });
    const text = lines.join("\n");
    assert.match(text, /DROPPED 2 row\(s\): missing_image 1, unknown_category 1/);
    assert.ok(text.includes(`${f}:2: image file not found`), text);
    assert.ok(text.includes(`${f}:3: unknown category 'drugs'`), text);
    // "fail" turns them into an error instead
    await assert.rejects(runDataCheck(f, { categories: CATS, onBadRow: "fail", log: () => {} }), /2 bad rows/);
  });

  test("an image folder's ignored files are reported", async () => {
    const dir = tempDir("check-folder");
    await writePng(path.join(dir, "safe/a.png"));
    writeText(path.join(dir, "safe/readme.txt"), "x");
    const lines: string[] = [];
    const r = await runDataCheck(dir, { categories: CATS, log: (l) => lines.push(l) });
    assert.deepEqual(r.ignoredFiles, ["safe/readme.txt"]);
    assert.match(lines.join("\n"), /ignored files \(not images, or hidden\): 1: safe\/readme.txt/);
  });

  test("stat3 takes the lower middle for an even count", () => {
    assert.deepEqual(stat3([4, 1, 3, 2]), { min: 1, median: 2, max: 4 });
    assert.deepEqual(stat3([5]), { min: 5, median: 5, max: 5 });
  });
});
