// clipGradNorm frees its intermediates itself: called outside any scope (as
// the trainers call it), it leaves no tensor handle behind. Before, it left
// four per call (the stacked norms and the coefficient's chain) for the
// garbage collector's finalizers: in a GRPO run that never yielded to the
// event loop that was 4 live handles more per step (bench/soak.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { liveTensors, randn, tidy } from "../../src/torch/index.js";
import { clipGradNorm } from "../../src/torch/optim/index.js";

test("clipGradNorm outside a scope leaves no live tensor, for the 2-norm and the max norm, clipping or not", () => {
  const params = [randn([8, 4]).requiresGrad_(true), randn([4]).requiresGrad_(true)];
  for (const [maxNorm, normType] of [
    [1e-3, 2],
    [1e6, 2],
    [1e-3, Infinity],
    [1e6, Infinity],
  ] as const) {
    tidy(() => params[0].matmul(params[1]).pow(2).sum().backward());
    const before = liveTensors();
    const norm = clipGradNorm(params, maxNorm, normType);
    assert.ok(norm > 0);
    assert.equal(liveTensors(), before, `maxNorm ${maxNorm}, norm ${normType}`);
    // Clipping did happen where the bound is below the norm.
    const after = tidy(() => (normType === 2 ? Math.hypot(params[0].grad!.norm().itemNumber(), params[1].grad!.norm().itemNumber()) : Math.max(params[0].grad!.abs().max().itemNumber(), params[1].grad!.abs().max().itemNumber())));
    if (maxNorm < norm) assert.ok(Math.abs(after - maxNorm) < 1e-6 * Math.max(1, maxNorm) + 1e-9, `clipped norm ${after}`);
    else assert.ok(Math.abs(after - norm) < 1e-5 * norm);
    for (const p of params) p.grad = null;
  }
  for (const p of params) p.dispose();
});
