// Elementwise comparison with stated tolerances, for op tests.
import assert from "node:assert/strict";

import { Tensor } from "../../src/torch/index.js";

export interface CloseOptions {
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** Relative tolerance (default 1e-5). */
  rtol?: number;
  /** Expected shape; checked when `actual` is a Tensor. */
  shape?: readonly number[];
}

const flat = (x: Tensor | readonly number[] | number): number[] =>
  x instanceof Tensor ? x.toFlatArray() : typeof x === "number" ? [x] : [...x];

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| elementwise
 * (numpy.allclose's rule). NaN matches NaN, and infinities must be equal.
 */
export function assertClose(actual: Tensor | readonly number[] | number, expected: Tensor | readonly number[] | number, opts: CloseOptions = {}, what = "value"): void {
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-5;
  if (opts.shape && actual instanceof Tensor) assert.deepEqual(actual.shape, [...opts.shape], `${what}: shape`);
  if (actual instanceof Tensor && expected instanceof Tensor) assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = flat(actual);
  const e = flat(expected);
  assert.equal(a.length, e.length, `${what}: ${a.length} elements, expected ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = e[i];
    if (Number.isNaN(y) && Number.isNaN(x)) continue;
    if (!Number.isFinite(y)) {
      assert.equal(x, y, `${what}[${i}]: got ${x}, expected ${y}`);
      continue;
    }
    const ok = Math.abs(x - y) <= atol + rtol * Math.abs(y);
    if (!ok) assert.fail(`${what}[${i}]: got ${x}, expected ${y} (|diff| ${Math.abs(x - y).toExponential(2)} > atol ${atol} + rtol ${rtol} * |expected|)`);
  }
}
