// Validation: one test per kind of bad row, each checking that the message
// names the file and line (or parquet row); the fail / skip policies; path
// escapes through `..`, absolute paths and symlinks.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { before, describe, test } from "node:test";

import { checkCategoryList, loadDataset, type BadRowKind, type LoadDatasetOptions } from "../../src/data/index.js";
import { jsonl, TINY, tempDir, writePng, writeText } from "./helpers.js";

const CATS = ["nudity", "weapons"];
const dir = tempDir("validate");
let ready = false;

/** Set up the shared files; called from each suite's `before` (top-level hooks may run after suites start). */
async function setup() {
  if (ready) return;
  ready = true;
  await writePng(path.join(dir, "ds/img/a.png"));
  await writePng(path.join(dir, "ds/img/b.png"));
  await writePng(path.join(dir, "outside.png")); // exists, but outside the dataset root ds/
  writeText(path.join(dir, "ds/img/not_really.png"), "this is text, not a PNG");
}

let n = 0;
/** Writes ds/m<k>.jsonl from rows and returns its path. */
const manifest = (rows: (object | string)[]) => writeText(path.join(dir, "ds", `m${n++}.jsonl`), jsonl(rows));
const good = { image: "img/a.png", labels: ["weapons"] };

/**
 * Loads a manifest whose line `line` is bad; checks the fail-mode message
 * names `file:line` and matches `reason`, and that skip mode drops exactly that row.
 */
async function expectBad(file: string, line: number, kind: BadRowKind, reason: RegExp, opts: LoadDatasetOptions = {}) {
  await assert.rejects(loadDataset(file, { categories: CATS, ...opts }), (e: Error) => {
    assert.ok(e.message.includes(`${file}:${line}: `), `message should name ${file}:${line}:\n${e.message}`);
    assert.match(e.message, reason);
    assert.match(e.message, new RegExp(`1 bad row \\(${kind}: 1\\)`));
    return true;
  });
  const ds = await loadDataset(file, { categories: CATS, onBadRow: "skip", ...opts });
  assert.equal(ds.dropped.length, 1);
  assert.equal(ds.dropped[0].kind, kind);
  assert.deepEqual(ds.dropped[0].source, { file, line });
  return ds;
}

describe("each kind of bad row names its file and line", () => {
  before(setup);
  test("malformed JSON line", async () => {
    const f = manifest([good, '{"image": "img/b.png", "labels": [}']);
    await expectBad(f, 2, "malformed_row", /invalid JSON/);
  });

  test("a JSON line that is not an object", async () => {
    const f = manifest([good, "[1, 2]"]);
    await expectBad(f, 2, "malformed_row", /expected a JSON object.*got an array/);
  });

  test("missing image key", async () => {
    const f = manifest([good, { labels: [] }]);
    await expectBad(f, 2, "malformed_row", /missing 'image'/);
  });

  test("labels of the wrong type: a string in JSONL", async () => {
    const f = manifest([good, { image: "img/b.png", labels: "weapons" }]);
    await expectBad(f, 2, "bad_labels", /'labels' must be a list of category names, got string "weapons"/);
  });

  test("labels of the wrong type: a number inside the list", async () => {
    const f = manifest([good, { image: "img/b.png", labels: ["weapons", 3] }]);
    await expectBad(f, 2, "bad_labels", /labels\[1\] is number 3/);
  });

  test("missing labels", async () => {
    const f = manifest([{ image: "img/b.png" }, good]);
    await expectBad(f, 1, "bad_labels", /missing 'labels' \(use an empty list \[\] for a safe image\)/);
  });

  test("'safe' combined with a category", async () => {
    const f = manifest([good, { image: "img/b.png", labels: ["safe", "weapons"] }]);
    await expectBad(f, 2, "bad_labels", /'safe' cannot be combined/);
  });

  test("unknown category: the message lists the valid ones and suggests a case fix", async () => {
    const f = manifest([good, { image: "img/b.png", labels: ["guns"] }, { image: "img/b.png", labels: ["Weapons"], id: "x" }]);
    await assert.rejects(loadDataset(f, { categories: CATS }), (e: Error) => {
      assert.ok(e.message.includes(`${f}:2: unknown category 'guns'; valid categories: nudity, weapons`), e.message);
      assert.ok(e.message.includes(`${f}:3: unknown category 'Weapons' (did you mean 'weapons'?)`), e.message);
      assert.match(e.message, /2 bad rows \(unknown_category: 2\)/);
      return true;
    });
  });

  test("bad split value", async () => {
    const f = manifest([good, { image: "img/b.png", labels: [], split: "holdout" }]);
    await expectBad(f, 2, "bad_split", /'split' must be train, val or test/);
  });

  test("id and hard of the wrong type", async () => {
    await expectBad(manifest([good, { image: "img/b.png", labels: [], id: { x: 1 } }]), 2, "bad_field", /'id' must be a string or an integer/);
    await expectBad(manifest([good, { image: "img/b.png", labels: [], hard: "maybe" }]), 2, "bad_field", /'hard' must be true or false/);
  });

  test("duplicate id: the second row is refused and the first is named", async () => {
    const f = manifest([good, { image: "img/b.png", labels: [] }, { image: "img/b.png", labels: [] }]);
    await expectBad(f, 3, "duplicate_id", new RegExp(`duplicate id 'img/b.png' \\(first used at ${f.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:2\\)`));
    const g = manifest([{ ...good, id: "same" }, { image: "img/b.png", labels: [], id: "same" }]);
    await expectBad(g, 2, "duplicate_id", /duplicate id 'same'/);
  });

  test("missing image file", async () => {
    const f = manifest([good, { image: "img/nope.png", labels: [] }]);
    await expectBad(f, 2, "missing_image", new RegExp(`image file not found: .*img/nope.png`));
  });

  test("unreadable image (not an image at all)", async () => {
    const f = manifest([good, { image: "img/not_really.png", labels: [] }]);
    await expectBad(f, 2, "unreadable_image", /img\/not_really\.png: not a readable image/);
    // with image checks off the row passes (only existence is checked)
    const ds = await loadDataset(f, { categories: CATS, checkImages: false });
    assert.equal(ds.examples.length, 2);
    assert.equal(ds.examples[1].size, undefined);
  });

  test("image path escaping the root with ..", async () => {
    const f = manifest([good, { image: "../outside.png", labels: [] }]);
    await expectBad(f, 2, "path_escape", /image path '..\/outside.png' resolves to .*outside the dataset root/);
  });

  test("absolute image path outside the root (inside is fine)", async () => {
    const f = manifest([good, { image: path.join(dir, "outside.png"), labels: [] }, { image: path.join(dir, "ds/img/b.png"), labels: [] }]);
    const ds = await expectBad(f, 2, "path_escape", /outside the dataset root/);
    assert.equal(ds.examples[1].id, "img/b.png");
  });

  test("a symlink inside the root that leads outside it", async () => {
    const link = path.join(dir, "ds/img/link.png");
    fs.symlinkSync(path.join(dir, "outside.png"), link);
    const f = manifest([good, { image: "img/link.png", labels: [] }]);
    await expectBad(f, 2, "path_escape", /goes through a symlink to .*outside.png, outside the dataset root/);
    // a symlinked folder counts too
    fs.symlinkSync(dir, path.join(dir, "ds/up"));
    const g = manifest([good, { image: "up/outside.png", labels: [] }]);
    await expectBad(g, 2, "path_escape", /goes through a symlink/);
    // a symlink that stays inside is fine
    fs.symlinkSync(path.join(dir, "ds/img/b.png"), path.join(dir, "ds/img/inner.png"));
    const ok = await loadDataset(manifest([good, { image: "img/inner.png", labels: [] }]), { categories: CATS });
    assert.equal(ok.examples.length, 2);
  });

  test("a dangling symlink is a missing image", async () => {
    fs.symlinkSync(path.join(dir, "gone.png"), path.join(dir, "ds/img/dangling.png"));
    const f = manifest([good, { image: "img/dangling.png", labels: [] }]);
    await expectBad(f, 2, "missing_image", /symlink to a missing file/);
  });

  test("an image-folder symlink escaping the root", async () => {
    const root = tempDir("folder-link");
    await writePng(path.join(root, "safe/a.png"));
    fs.mkdirSync(path.join(root, "weapons"));
    fs.symlinkSync(path.join(dir, "outside.png"), path.join(root, "weapons/evil.png"));
    const ds = await loadDataset(root, { categories: CATS, onBadRow: "skip" });
    assert.equal(ds.examples.length, 1);
    assert.equal(ds.dropped[0].kind, "path_escape");
    assert.equal(ds.dropped[0].source.file, path.join(root, "weapons/evil.png"));
  });

  test("an image-folder category that is not configured", async () => {
    const root = tempDir("folder-cat");
    await writePng(path.join(root, "safe/a.png"));
    await writePng(path.join(root, "guns/b.png"));
    await assert.rejects(loadDataset(root, { categories: CATS }), (e: Error) => {
      assert.ok(e.message.includes(`${path.join(root, "guns/b.png")}: unknown category 'guns'; valid categories: nudity, weapons`), e.message);
      return true;
    });
  });

  test("CSV: wrong field count, bad quoting and a bad labels cell name their lines", async () => {
    const f = writeText(
      path.join(dir, "ds/bad.csv"),
      ["image,labels,split", "img/a.png,weapons,train", "img/b.png,weapons", '"img/b.png"x,,', 'img/b.png,"[""weapons""",val', "img/a.png,weapons|nudity,test"].join("\n") + "\n",
    );
    await assert.rejects(loadDataset(f, { categories: CATS }), (e: Error) => {
      assert.match(e.message, /4 bad rows \(malformed_row: 2, bad_labels: 1, duplicate_id: 1\)/);
      assert.ok(e.message.includes(`${f}:3: expected 3 fields (image, labels, split), found 2`), e.message);
      assert.ok(e.message.includes(`${f}:4: unexpected character 'x' after a closing quote`), e.message);
      assert.ok(e.message.includes(`${f}:5: labels cell "[\\"weapons\\"" starts with '[' but is not a valid JSON list`), e.message);
      assert.ok(e.message.includes(`${f}:6: duplicate id 'img/a.png' (first used at ${f}:2)`), e.message);
      return true;
    });
    const ds = await loadDataset(f, { categories: CATS, onBadRow: "skip" });
    assert.deepEqual(
      ds.dropped.map((d) => [d.source.line, d.kind]),
      [
        [3, "malformed_row"],
        [4, "malformed_row"],
        [5, "bad_labels"],
        [6, "duplicate_id"],
      ],
    );
  });

  test("CSV header without a labels column is an error for the whole file", async () => {
    const f = writeText(path.join(dir, "ds/nolabels.csv"), "image,split\nimg/a.png,train\n");
    await assert.rejects(loadDataset(f, { categories: CATS }), (e: Error) => e.message.includes(`${f}:1: the header has no 'labels' column; found: image, split`));
  });

  test("parquet rows are named by file and row", async () => {
    const file = path.join(TINY, "tiny.parquet");
    await assert.rejects(loadDataset(file, { categories: ["weapons"] }), (e: Error) => {
      assert.ok(e.message.includes(`${file}: row 4: unknown category 'nudity'; valid categories: weapons`), e.message);
      assert.ok(e.message.includes(`${file}: row 5: unknown category 'nudity'`), e.message);
      return true;
    });
  });
});

describe("bad-row policy", () => {
  before(setup);
  test("fail: one Error with the count, the kinds and at most 20 rows", async () => {
    const rows: object[] = [good];
    for (let k = 0; k < 25; k++) rows.push({ image: `img/missing${k}.png`, labels: [] });
    const f = manifest(rows);
    await assert.rejects(loadDataset(f, { categories: CATS }), (e: Error) => {
      assert.match(e.message, /25 bad rows \(missing_image: 25\)/);
      assert.match(e.message, /set onBadRow to "skip"/);
      assert.equal((e.message.match(/image file not found/g) ?? []).length, 20);
      assert.match(e.message, /\.\.\. and 5 more/);
      assert.ok(e.message.includes(`${f}:21:`) && !e.message.includes(`${f}:22:`));
      return true;
    });
  });

  test("skip: bad rows come back in `dropped` in file order, good rows load", async () => {
    const f = manifest([good, "not json", { image: "img/b.png", labels: ["x"] }, { image: "img/b.png", labels: [] }, { image: "img/gone.png", labels: [] }]);
    const ds = await loadDataset(f, { categories: CATS, onBadRow: "skip" });
    assert.deepEqual(
      ds.examples.map((e) => e.id),
      ["img/a.png", "img/b.png"],
    );
    assert.deepEqual(
      ds.dropped.map((d) => [d.source.line, d.kind]),
      [
        [2, "malformed_row"],
        [3, "unknown_category"],
        [5, "missing_image"],
      ],
    );
  });

  test("a dataset with no good row is an error even when skipping", async () => {
    const f = manifest([{ image: "img/gone.png", labels: [] }]);
    await assert.rejects(loadDataset(f, { categories: CATS, onBadRow: "skip" }), /all 1 rows are bad/);
  });

  test("an invalid onBadRow value is refused", async () => {
    await assert.rejects(loadDataset(manifest([good]), { categories: CATS, onBadRow: "ignore" as "skip" }), /onBadRow: expected "fail" or "skip"/);
  });
});

describe("category list", () => {
  before(setup);
  test("accepts names; refuses empty, duplicate, reserved and separator-carrying names", () => {
    assert.deepEqual(checkCategoryList(["nudity", "weapons", "self harm"]), ["nudity", "weapons", "self harm"]);
    assert.throws(() => checkCategoryList([]), /non-empty list/);
    assert.throws(() => checkCategoryList(["a", "a"]), /'a' is listed twice/);
    assert.throws(() => checkCategoryList(["Safe"]), /'Safe' is reserved/);
    assert.throws(() => checkCategoryList(["a;b"]), /contains one of/);
    assert.throws(() => checkCategoryList([" padded"]), /not a valid category name/);
  });

  test("user categories replace the defaults", async () => {
    const f = manifest([{ image: "img/a.png", labels: ["drugs"] }, { image: "img/b.png", labels: "drugs", id: 7 }]);
    const ds = await loadDataset(f, { categories: ["drugs"], onBadRow: "skip" });
    assert.deepEqual(ds.categories, ["drugs"]);
    assert.deepEqual(ds.examples[0].labels, ["drugs"]);
    assert.equal(ds.dropped[0].kind, "bad_labels"); // a string is not a list in JSONL
  });
});
