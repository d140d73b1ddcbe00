// The "one copy" property, checked from the outside: loading a 64 MB tensor
// reads it from the file straight into libtorch storage, so no JS
// ArrayBuffer of that size is made on the way (nor when saving).
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";

import { loadSafetensors, saveSafetensors } from "../../src/io/safetensors.js";
import { randn, tidy } from "../../src/torch/index.js";
import { tempDir } from "./helpers.js";

const MB = 1024 * 1024;

test("saving and loading a 64 MB tensor allocates no JS buffer of its data", () =>
  tidy(() => {
    const file = path.join(tempDir("st-memory"), "big.safetensors");
    const big = randn([16 * MB]); // 64 MB of float32
    const ab0 = process.memoryUsage().arrayBuffers;
    saveSafetensors(file, { big });
    const ab1 = process.memoryUsage().arrayBuffers;
    const loaded = loadSafetensors(file).get("big")!;
    const ab2 = process.memoryUsage().arrayBuffers;
    // A JS copy of the data would add 64 MB; allow a few MB of unrelated noise.
    assert.ok(ab1 - ab0 < 8 * MB, `save grew arrayBuffers by ${((ab1 - ab0) / MB).toFixed(1)} MB`);
    assert.ok(ab2 - ab1 < 8 * MB, `load grew arrayBuffers by ${((ab2 - ab1) / MB).toFixed(1)} MB`);
    // And the data is right (compared inside libtorch, again without a JS copy).
    assert.equal(loaded.ne(big).sum().item(), 0, "elements differ");
  }));
