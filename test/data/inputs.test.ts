// predict's inputs: files, folders (recursive, image extensions), globs and
// list files, expanded in order; inputs that give nothing are reported.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { collectImageInputs, expandGlob, readListFile } from "../../src/data/inputs.js";
import { tempDir, writePng, writeText } from "./helpers.js";

test("files, folders, globs and lists expand in order; duplicates once; problems where they stood", async () => {
  const dir = tempDir("inputs");
  for (const f of ["a/1.png", "a/b/2.JPG", "a/b/c/3.webp", "a/.hidden/4.png", "x/5.png", "x/6.png", "y/7.gif"]) await writePng(path.join(dir, f));
  writeText(path.join(dir, "a/notes.txt"), "not an image");
  writeText(path.join(dir, "empty/readme.md"), "no images here");
  const rel = (p: string) => path.relative(dir, p).split(path.sep).join("/");

  const folder = collectImageInputs([path.join(dir, "a")]);
  assert.deepEqual(folder.files.map(rel), ["a/1.png", "a/b/2.JPG", "a/b/c/3.webp"]);

  assert.deepEqual(expandGlob(path.join(dir, "x", "*.png")).map(rel), ["x/5.png", "x/6.png"]);
  assert.deepEqual(expandGlob(path.join(dir, "**", "[3-6].*")).map(rel), ["a/b/c/3.webp", "x/5.png", "x/6.png"]);
  assert.deepEqual(expandGlob(path.join(dir, "?", "7.gif")).map(rel), ["y/7.gif"]);

  const list = writeText(path.join(dir, "list.txt"), `# photos\n${path.join(dir, "y/7.gif")}\n\n${path.join(dir, "x")}\n`);
  assert.deepEqual(readListFile(list), [path.join(dir, "y/7.gif"), path.join(dir, "x")]);
  assert.throws(() => readListFile(path.join(dir, "nope.txt")), /--list .*nope\.txt: cannot read it \(ENOENT\)/);

  const all = collectImageInputs([path.join(dir, "x/6.png"), path.join(dir, "missing.png"), path.join(dir, "x"), path.join(dir, "z*.png"), path.join(dir, "empty"), path.join(dir, "a/notes.txt")]);
  assert.deepEqual(
    all.items.map((i) => ("file" in i ? rel(i.file) : `! ${i.problem.reason.replace(dir + path.sep, "")}`)),
    ["x/6.png", "! missing.png: image file not found", "x/5.png", "! no file matches the pattern z*.png", "! no image files (.png .jpg .jpeg .webp .gif .avif .tif .tiff .bmp) in folder empty", "a/notes.txt"],
  );
  assert.equal(all.problems.length, 3);
  assert.equal(all.files.length, 3);
});
