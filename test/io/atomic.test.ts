// Atomic writes: a save that fails midway leaves the old file or folder as it
// was and no temporary files behind; a save that succeeds replaces it whole.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";

import { writeFileAtomic, writeFolderAtomic, writeTextFileAtomic } from "../../src/io/atomic.js";
import { loadSafetensors, loadSafetensorsFolder, saveSafetensors, saveSafetensorsSharded } from "../../src/io/safetensors.js";
import { randn, type Tensor, tidy } from "../../src/torch/index.js";
import { wrapHandle } from "../../src/torch/tensor.js";
import { listDir, tempDir } from "./helpers.js";

const root = tempDir("atomic");
let n = 0;
const freshDir = () => {
  const d = path.join(root, `case${n++}`);
  fs.mkdirSync(d);
  return d;
};

/**
 * A tensor whose handle is released behind its back, with its metadata
 * already cached: it passes the up-front checks and makes the data write
 * throw, i.e. a save that fails after part of the file is written.
 */
function releasedBehindItsBack(shape: number[]): Tensor {
  const t = randn(shape);
  void t.shape, t.dtype;
  wrapHandle(t._h).dispose();
  return t;
}

describe("writeFileAtomic", () => {
  test("replaces the file's content and leaves no temporary file", () => {
    const dir = freshDir();
    const f = path.join(dir, "a.txt");
    writeTextFileAtomic(f, "old");
    writeTextFileAtomic(f, "new content");
    assert.equal(fs.readFileSync(f, "utf8"), "new content");
    assert.deepEqual(listDir(dir), ["a.txt"]);
  });

  test("a writer that throws after writing part of the data leaves the old file and no temporary file", () => {
    const dir = freshDir();
    const f = path.join(dir, "a.txt");
    writeTextFileAtomic(f, "old");
    assert.throws(
      () =>
        writeFileAtomic(f, (fd) => {
          fs.writeSync(fd, "half of the new");
          throw new Error("disk on fire");
        }),
      /disk on fire/,
    );
    assert.equal(fs.readFileSync(f, "utf8"), "old");
    assert.deepEqual(listDir(dir), ["a.txt"]);
  });
});

describe("saveSafetensors is atomic", () => {
  test("a save that fails while writing tensor data leaves the old checkpoint intact", () =>
    tidy(() => {
      const dir = freshDir();
      const f = path.join(dir, "model.safetensors");
      saveSafetensors(f, { w: randn([16]) });
      const before = fs.readFileSync(f);
      // "aa" (4 KB) is written before "zz", whose write then fails.
      assert.throws(() => saveSafetensors(f, { aa: randn([1024]), zz: releasedBehindItsBack([8]) }), /released tensor/);
      assert.ok(fs.readFileSync(f).equals(before), "old file changed");
      assert.deepEqual(listDir(dir), ["model.safetensors"]);
      assert.deepEqual([...loadSafetensors(f).keys()], ["w"]);
    }));

  test("a disposed tensor in the map is refused before the old file is touched", () =>
    tidy(() => {
      const dir = freshDir();
      const f = path.join(dir, "model.safetensors");
      saveSafetensors(f, { w: randn([16]) });
      const before = fs.readFileSync(f);
      const gone = randn([4]);
      gone.dispose();
      assert.throws(() => saveSafetensors(f, { a: randn([4]), gone }), /tensor 'gone' was disposed/);
      assert.ok(fs.readFileSync(f).equals(before));
      assert.deepEqual(listDir(dir), ["model.safetensors"]);
    }));
});

describe("writeFolderAtomic", () => {
  test("creates a new folder, and swaps an existing one for the new content", () => {
    const parent = freshDir();
    const target = path.join(parent, "ckpt");
    writeFolderAtomic(target, (tmp) => fs.writeFileSync(path.join(tmp, "one.txt"), "1"));
    assert.deepEqual(listDir(target), ["one.txt"]);
    writeFolderAtomic(target, (tmp) => fs.writeFileSync(path.join(tmp, "two.txt"), "2"));
    assert.deepEqual(listDir(target), ["two.txt"]);
    assert.deepEqual(listDir(parent), ["ckpt"], "no temporary or backup folder left");
  });

  test("a sharded checkpoint save that fails midway leaves the previous folder whole", () =>
    tidy(() => {
      const parent = freshDir();
      const target = path.join(parent, "ckpt");
      const old = new Map([
        ["a", randn([64])],
        ["b", randn([64])],
      ]);
      writeFolderAtomic(target, (tmp) => {
        saveSafetensorsSharded(tmp, old, { maxShardBytes: 256 });
        fs.writeFileSync(path.join(tmp, "config.json"), '{"step": 1}');
      });
      const files = listDir(target);
      assert.deepEqual(files, ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]);
      const bytes = files.map((f) => fs.readFileSync(path.join(target, f)));

      // The second shard's tensor fails after the first shard was written.
      const next = new Map([
        ["a", randn([64])],
        ["b", releasedBehindItsBack([64])],
      ]);
      assert.throws(
        () =>
          writeFolderAtomic(target, (tmp) => {
            saveSafetensorsSharded(tmp, next, { maxShardBytes: 256 });
            fs.writeFileSync(path.join(tmp, "config.json"), '{"step": 2}');
          }),
        /released tensor/,
      );
      assert.deepEqual(listDir(target), files);
      files.forEach((f, i) => assert.ok(fs.readFileSync(path.join(target, f)).equals(bytes[i]), `${f} changed`));
      assert.deepEqual(listDir(parent), ["ckpt"], "no temporary folder left");
      const back = loadSafetensorsFolder(target);
      assert.ok(Buffer.from(back.get("b")!.toBytes()).equals(Buffer.from(old.get("b")!.toBytes())));
    }));

  test("refuses to replace a file with a folder, leaving both as they were", () => {
    const parent = freshDir();
    const target = path.join(parent, "ckpt");
    fs.writeFileSync(target, "a file");
    assert.throws(() => writeFolderAtomic(target, () => undefined), /not a directory/);
    assert.equal(fs.readFileSync(target, "utf8"), "a file");
    assert.deepEqual(listDir(parent), ["ckpt"]);
  });
});
