import assert from "node:assert/strict";
import { test } from "node:test";
import { getBlasThreads, manualSeed, randn, setBlasThreads, tidy } from "../../src/torch/index.js";

// The two thread counts split the sums differently, so the results agree to
// float32 rounding (about 2e-5 relative here), not bit for bit: a run is
// reproducible for a given thread setting.
test("BLAS threads: OpenBLAS's pool is read and set; a matmul agrees to float32 rounding with 1 or 2 BLAS threads", () => {
  const before = getBlasThreads();
  if (before === null) {
    // Not OpenBLAS: nothing to set, and the setter says so.
    assert.equal(setBlasThreads(1), false);
    return;
  }
  assert.ok(Number.isInteger(before) && before >= 1, `openblas_get_num_threads gave ${before}`);
  manualSeed(0);
  const run = () => tidy(() => randn([256, 384]).matmul(randn([384, 320])).toFlatArray());
  try {
    assert.equal(setBlasThreads(1), true);
    assert.equal(getBlasThreads(), 1);
    manualSeed(1);
    const one = run();
    assert.equal(setBlasThreads(2), true);
    assert.equal(getBlasThreads(), 2);
    manualSeed(1);
    const two = run();
    let worst = 0;
    one.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - two[i]) / Math.max(1, Math.abs(v)))));
    assert.ok(worst <= 1e-4, `largest relative difference ${worst}`);
  } finally {
    setBlasThreads(before);
  }
  assert.equal(getBlasThreads(), before);
});

test("setBlasThreads refuses a count below 1 or not an integer", () => {
  assert.throws(() => setBlasThreads(0), /setBlasThreads: n must be a positive integer, got 0/);
  assert.throws(() => setBlasThreads(1.5), /setBlasThreads: n must be a positive integer, got 1.5/);
});
