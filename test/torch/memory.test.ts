// Memory over a long training run: a small MLP (64 -> 128 -> 10) trained for
// 3000 steps with AdamW, clipGradNorm and a cosine schedule, each step inside
// tidy(). Live tensor handles must be exactly flat between step 500 and step
// 3000, and resident memory may grow by at most 30 MB over those steps (V8's
// heap and the allocator settle by step 500; a leak of one 64x128 float32
// tensor per step would alone add ~94 MB). The loop yields to the event
// loop every few steps, as a real training loop does (logging, async reward
// functions): on Node 20 the addon's handle finalizers run from the event
// loop, so a loop that never yields holds ~300 bytes per released handle
// until it does. Also: a disposed tensor refuses its metadata getters with
// a clear error instead of answering from a cache.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { cloneOutsideHeap, F, getNumThreads, HEAP_TRIM_GROWTH_BYTES, keep, liveTensors, manualSeed, randn, setNumThreads, type Tensor, tensor, tidy, trimHeapNowAndThen } from "../../src/torch/index.js";
import { AdamW, clipGradNorm, LRScheduler } from "../../src/torch/optim/index.js";

const STEPS = 3000;
const CHECK_AT = 500;
const RSS_BOUND_MB = 30;
const YIELD_EVERY = 10;

describe("memory", () => {
  test(`MLP training: live tensors flat and RSS growth < ${RSS_BOUND_MB} MB from step ${CHECK_AT} to ${STEPS}`, async () => {
    // One intra-op thread: the ops are tiny, and on a busy machine a second
    // spinning thread made this loop ~10x slower (24 s instead of 2.7 s).
    const threads = getNumThreads();
    setNumThreads(1);
    try {
      await trainAndCheck();
    } finally {
      setNumThreads(threads);
    }
  });

  async function trainAndCheck(): Promise<void> {
    manualSeed(0);
    const live0 = liveTensors();
    // A fixed task: 512 inputs, labels from a random linear teacher.
    const x = keep(randn([512, 64]));
    const labels = keep(tidy(() => x.matmul(randn([64, 10])).argmax(1)));
    const init = (shape: number[], std: number): Tensor => keep(tidy(() => randn(shape).mul(std)).requiresGrad_(true));
    const params = [init([128, 64], 0.125), init([128], 0), init([10, 128], 0.09), init([10], 0)];
    const opt = new AdamW(params, { lr: 3e-3, weightDecay: 0.01 });
    const sched = new LRScheduler(opt, { kind: "cosine", warmupSteps: 100, totalSteps: STEPS });
    const lossOf = (xb: Tensor, yb: Tensor) => F.crossEntropy(F.linear(F.relu(F.linear(xb, params[0], params[1])), params[2], params[3]), yb);
    const fullLoss = () => tidy(() => lossOf(x, labels).itemNumber());

    const lossStart = fullLoss();
    let liveAtCheck = -1;
    let rssAtCheck = 0;
    const t0 = performance.now();
    for (let step = 1; step <= STEPS; step++) {
      tidy(() => {
        const start = (step * 32) % 512;
        const loss = lossOf(x.slice(0, start, start + 32), labels.slice(0, start, start + 32));
        loss.backward();
        clipGradNorm(params, 1.0);
        opt.step();
        sched.step();
        opt.zeroGrad();
      });
      if (step % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
      if (step === CHECK_AT) {
        liveAtCheck = liveTensors();
        rssAtCheck = process.memoryUsage().rss;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const liveAtEnd = liveTensors();
    const rssGrowthMb = (process.memoryUsage().rss - rssAtCheck) / 2 ** 20;
    const lossEnd = fullLoss();

    assert.equal(liveAtEnd, liveAtCheck, `live tensors: ${liveAtCheck} at step ${CHECK_AT}, ${liveAtEnd} at step ${STEPS}`);
    assert.ok(rssGrowthMb < RSS_BOUND_MB, `RSS grew by ${rssGrowthMb.toFixed(1)} MB from step ${CHECK_AT} to ${STEPS} (bound ${RSS_BOUND_MB} MB)`);
    assert.ok(lossEnd < lossStart * 0.5, `loss ${lossStart.toFixed(3)} -> ${lossEnd.toFixed(3)}: expected it at least halved`);
    // 4 params + 8 AdamW buffers + x + labels.
    assert.equal(liveAtEnd - live0, 14, "live tensors beyond params, optimizer state and data");
    console.log(`# ${STEPS} steps in ${seconds.toFixed(1)} s; loss ${lossStart.toFixed(3)} -> ${lossEnd.toFixed(3)}; RSS +${rssGrowthMb.toFixed(1)} MB; live ${liveAtEnd - live0}`);

    opt.dispose();
    for (const t of [...params, x, labels]) t.dispose();
    assert.equal(liveTensors(), live0);
  }

  test("a disposed tensor's getters throw 'tensor used after dispose' naming the getter", () => {
    const t = tensor([[1, 2, 3]]);
    // Read once so that the metadata is cached: the getters must not answer from the cache.
    assert.deepEqual([t.shape, t.dtype, t.device, t.ndim, t.numel], [[1, 3], "float32", "cpu", 2, 3]);
    t.dispose();
    for (const getter of ["shape", "dtype", "device", "ndim", "numel"] as const) {
      assert.throws(() => t[getter], new RegExp(`Tensor\\.${getter}: tensor used after dispose`), getter);
    }
    assert.throws(() => t.size(0), /Tensor\.size: tensor used after dispose/);
    assert.throws(() => t.isFloatingPoint, /tensor used after dispose/);
    assert.equal(String(t), "Tensor(<disposed>)");
    const scoped = tidy(() => {
      const inner = tensor([1]);
      void inner.shape;
      return { inner };
    }).inner;
    void scoped; // returned from the scope: still alive
    let escaped: Tensor | undefined;
    tidy(() => {
      escaped = tensor([1, 2]);
      void escaped.shape;
    });
    assert.throws(() => escaped!.shape, /Tensor\.shape: tensor used after dispose/, "a tensor released by its scope");
    scoped.dispose();
  });

  test("item() is a boolean for bool tensors and a number otherwise; itemNumber() is always a number", () =>
    tidy(() => {
      assert.equal(tensor([true, true]).all().item(), true);
      assert.equal(tensor([true, false]).all().item(), false);
      assert.equal(tensor([true, false]).any().itemNumber(), 1);
      assert.equal(tensor([false]).itemNumber(), 0);
      assert.equal(tensor([2.5]).item(), 2.5);
      assert.equal(tensor([7n]).itemNumber(), 7);
    }));
});

describe("memory outside the C heap", () => {
  test("cloneOutsideHeap: an exact, contiguous, independent copy that keeps its dtype and does not track gradients", () => {
    const cases: Tensor[] = [
      tensor([1.5, -0, NaN, Infinity, 3e-40], { dtype: "float32" }),
      tensor([[1, 2, 3], [4, 5, 6]], { dtype: "int16" }).transpose(0, 1), // not contiguous
      tensor([0, 255, 7], { dtype: "uint8" }),
      randn([64, 1024]).requiresGrad_(), // 256 KiB, above a page
      tensor([], { dtype: "float32" }),
    ];
    for (const src of cases) {
      const copy = cloneOutsideHeap(src);
      assert.deepEqual(copy.shape, src.shape);
      assert.equal(copy.dtype, src.dtype);
      assert.equal(copy.requiresGrad, false);
      assert.deepEqual(Buffer.from(copy.toBytes()), Buffer.from(src.contiguous().toBytes()), `bytes of a ${src.dtype} ${src.shape}`);
      copy.dispose();
    }
    const src = tensor([1, 2, 3], { dtype: "float32" });
    const copy = cloneOutsideHeap(src);
    src.mul_(10); // the copy does not share the source's memory
    assert.deepEqual(copy.toFlatArray(), [1, 2, 3]);
    for (const t of [...cases, src, copy]) t.dispose();
  });

  test("trimHeapNowAndThen trims above its bar, and a trim raises the bar to the level it found", () => {
    trimHeapNowAndThen(1); // sets the bar on a first call; below any bar afterwards: no trim either way
    const high = 1e12; // far above any real RSS
    assert.equal(trimHeapNowAndThen(high), true);
    // The bar is now the level the trim found (higher than the real RSS after it plus the growth allowance).
    assert.equal(trimHeapNowAndThen(high), false, "climbing back to the earlier peak does not trim");
    assert.equal(trimHeapNowAndThen(process.memoryUsage.rss()), false);
    assert.equal(trimHeapNowAndThen(high + 1), true, "above the earlier peak: trims");
  });
});
