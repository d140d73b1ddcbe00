// Optimizers and gradient clipping against PyTorch trajectories
// (test/fixtures/optim.json, made by scripts/fixtures/make_optim_fixtures.py),
// plus state save/resume through safetensors, validation and memory.
// Tolerances: float32 |diff| <= 1e-7 + 1e-6 |expected| (the update runs the
// same kernels as torch.optim's single-tensor path; only the bias-correction
// powers come from JS's pow instead of C's); float64 1e-12 relative.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { loadSafetensors, saveSafetensors } from "../../src/io/safetensors.js";
import { type DType, F, keep, liveTensors, manualSeed, randn, type Tensor, tensor, tidy, zeros } from "../../src/torch/index.js";
import { AdamW, clipGradNorm, LRScheduler, type Optimizer, SGD } from "../../src/torch/optim/index.js";
import { assertClose } from "../helpers/close.js";

interface Encoded {
  shape: number[];
  data: number[];
}
interface TrajectoryCase {
  optimizer: "AdamW" | "SGD";
  dtype: DType;
  groups: { params: string[]; options: Record<string, unknown> }[];
  init: Record<string, Encoded>;
  steps: { grads: Record<string, Encoded | null>; params: Record<string, number[]> }[];
}
interface ClipCase {
  maxNorm: number;
  normType: number | "inf";
  grads: Encoded[];
  total: number;
  clipped: Encoded[];
}

/** Any optimizer, as the tests drive them. */
type AnyOptimizer = Optimizer<{ lr: number }>;

const file = fileURLToPath(new URL("../../../test/fixtures/optim.json", import.meta.url));
const fixtures = JSON.parse(fs.readFileSync(file, "utf8")) as { torch: string; optim: Record<string, TrajectoryCase>; clip: Record<string, ClipCase> };

function decode(e: Encoded, dtype: DType): Tensor {
  return dtype === "float64" ? tensor(Float64Array.from(e.data), { shape: e.shape }) : tensor(Float32Array.from(e.data), { shape: e.shape });
}

function makeOptimizer(kind: "AdamW" | "SGD", groups: { params: Tensor[]; [k: string]: unknown }[]): AnyOptimizer {
  return (kind === "AdamW" ? new AdamW(groups) : new SGD(groups, { lr: 0.01 })) as unknown as AnyOptimizer;
}

describe("optimizers against PyTorch trajectories", () => {
  for (const [name, c] of Object.entries(fixtures.optim)) {
    test(`${name} (${c.optimizer}, ${c.dtype}, ${c.steps.length} steps)`, () => {
      const live0 = liveTensors();
      const params = Object.fromEntries(Object.entries(c.init).map(([n, e]) => [n, keep(decode(e, c.dtype).requiresGrad_(true))]));
      const opt = makeOptimizer(
        c.optimizer,
        c.groups.map((g) => ({ params: g.params.map((n) => params[n]), ...g.options })),
      );
      const tol = c.dtype === "float64" ? { atol: 1e-14, rtol: 1e-12 } : { atol: 1e-7, rtol: 1e-6 };
      c.steps.forEach((s, k) => {
        for (const [n, g] of Object.entries(s.grads)) {
          const gt = g === null ? null : decode(g, c.dtype);
          params[n].grad = gt;
          gt?.dispose(); // the parameter holds its own reference
        }
        opt.step();
        for (const [n, exp] of Object.entries(s.params)) assertClose(params[n].toFlatArray(), exp, tol, `${name} step ${k + 1} param ${n}`);
      });
      opt.dispose();
      for (const p of Object.values(params)) p.dispose();
      assert.equal(liveTensors(), live0, `${name}: tensors leaked`);
    });
  }
});

describe("clipGradNorm against torch.nn.utils.clip_grad_norm_", () => {
  for (const [name, c] of Object.entries(fixtures.clip)) {
    test(name, () =>
      tidy(() => {
        const params = c.grads.map((g) => zeros(g.shape).requiresGrad_(true));
        params.forEach((p, i) => (p.grad = decode(c.grads[i], "float32")));
        const total = clipGradNorm(params, c.maxNorm, c.normType === "inf" ? Infinity : c.normType);
        assertClose(total, c.total, { atol: 0, rtol: 1e-6 }, `${name}: total norm`);
        params.forEach((p, i) => assertClose(p.grad!, c.clipped[i].data, { atol: 1e-7, rtol: 1e-6 }, `${name}: grad ${i}`));
      }),
    );
  }

  test("no gradients: returns 0 and changes nothing; the norm of a single tensor works", () =>
    tidy(() => {
      const p = zeros([3]).requiresGrad_(true);
      assert.equal(clipGradNorm([p], 1), 0);
      p.grad = tensor([3, 4, 0]);
      assert.ok(Math.abs(clipGradNorm(p, 1) - 5) < 1e-6);
      assertClose(p.grad!, [0.6, 0.8, 0], { atol: 1e-6, rtol: 0 }, "clipped to norm 1");
    }));

  test("errorIfNonfinite names the norm", () =>
    tidy(() => {
      const p = zeros([2]).requiresGrad_(true);
      p.grad = tensor([Infinity, 1]);
      assert.throws(() => clipGradNorm([p], 1, 2, { errorIfNonfinite: true }), /clipGradNorm: the total norm of order 2 .* is Infinity/);
    }));
});

// ---- resume -------------------------------------------------------------

/** A small regression problem: params, a loss, and fixed batches. */
function makeParams(): Tensor[] {
  manualSeed(7);
  return tidy(() => [randn([6, 4]).mul(0.3), randn([6]).mul(0.1), randn([1, 6]).mul(0.3)]).map((t) => keep(t.requiresGrad_(true)));
}
function batch(step: number): { x: Tensor; y: Tensor } {
  manualSeed(1000 + step);
  const x = randn([8, 4]);
  return { x, y: x.sum(1, true).tanh() };
}
function trainStep(params: Tensor[], opt: AnyOptimizer, sched: LRScheduler, step: number): void {
  tidy(() => {
    const { x, y } = batch(step);
    const h = F.linear(x, params[0], params[1]).tanh();
    F.mseLoss(F.linear(h, params[2]), y).backward();
    clipGradNorm(params, 0.5);
    opt.step();
    sched.step();
    opt.zeroGrad();
  });
}

function resumeCase(name: string, make: (ps: Tensor[]) => AnyOptimizer): void {
  test(`${name}: save at step 6 via safetensors, resume in a fresh optimizer: bit-exact with an uninterrupted run`, () => {
    const live0 = liveTensors();
    const N = 6;
    const M = 5;
    // Uninterrupted.
    const ref = makeParams();
    const refOpt = make(ref);
    const refSched = new LRScheduler(refOpt, { kind: "cosine", warmupSteps: 3, totalSteps: N + M });
    for (let s = 0; s < N + M; s++) trainStep(ref, refOpt, refSched, s);
    // Interrupted at N.
    const a = makeParams();
    const aOpt = make(a);
    const aSched = new LRScheduler(aOpt, { kind: "cosine", warmupSteps: 3, totalSteps: N + M });
    for (let s = 0; s < N; s++) trainStep(a, aOpt, aSched, s);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "optim-resume-"));
    try {
      const f = path.join(dir, "optimizer.safetensors");
      saveSafetensors(f, aOpt.stateTensors());
      const weights = path.join(dir, "params.safetensors");
      saveSafetensors(weights, Object.fromEntries(a.map((p, i) => [`p${i}`, p])));
      const meta = JSON.parse(JSON.stringify(aOpt.stateMeta()));
      const schedState = JSON.parse(JSON.stringify(aSched.stateDict()));
      aOpt.dispose();
      for (const p of a) p.dispose();
      // Fresh process state: new params from the file, new optimizer and scheduler with other hyperparameters.
      const loadedW = loadSafetensors(weights);
      const b = [0, 1, 2].map((i) => keep(loadedW.get(`p${i}`)!.requiresGrad_(true)));
      const bOpt = make(b);
      for (const g of bOpt.paramGroups) g.lr = 123; // overwritten by the load
      const bSched = new LRScheduler(bOpt, { kind: "constant" });
      const st = loadSafetensors(f);
      bOpt.loadState(st, meta);
      for (const t of st.values()) t.dispose();
      bSched.loadStateDict(schedState);
      for (let s = N; s < N + M; s++) trainStep(b, bOpt, bSched, s);
      b.forEach((p, i) => assert.deepEqual(p.toFlatArray(), ref[i].toFlatArray(), `param ${i} differs from the uninterrupted run`));
      assert.deepEqual(bSched.lastLr(), refSched.lastLr());
      bOpt.dispose();
      for (const p of b) p.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    refOpt.dispose();
    for (const p of ref) p.dispose();
    assert.equal(liveTensors(), live0, "tensors leaked");
  });
}

describe("state save and resume", () => {
  resumeCase("AdamW with two groups", (ps) => new AdamW([{ params: [ps[0], ps[1]], weightDecay: 0.1 }, { params: [ps[2]], lr: 3e-3, amsgrad: true }], { lr: 1e-2 }) as unknown as AnyOptimizer);
  resumeCase("SGD with nesterov momentum", (ps) => new SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }) as unknown as AnyOptimizer);

  test("stateMeta records step counts, options and groups; stateTensors names state.<index>.<buffer>", () => {
    const ps = makeParams();
    const opt = new AdamW([{ params: [ps[0]] }, { params: [ps[1], ps[2]], lr: 0.5 }], { weightDecay: 0 });
    tidy(() => {
      ps[0].grad = zeros([6, 4]).add(1);
      ps[2].grad = zeros([1, 6]).add(1);
    });
    opt.step();
    const meta = opt.stateMeta();
    assert.deepEqual(meta.groups[0], { params: [0], options: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false } });
    assert.deepEqual(meta.groups[1].params, [1, 2]);
    assert.equal(meta.groups[1].options.lr, 0.5);
    assert.deepEqual(meta.state, { "0": { step: 1, tensors: ["exp_avg", "exp_avg_sq"] }, "2": { step: 1, tensors: ["exp_avg", "exp_avg_sq"] } });
    assert.deepEqual(Object.keys(opt.stateTensors()).sort(), ["state.0.exp_avg", "state.0.exp_avg_sq", "state.2.exp_avg", "state.2.exp_avg_sq"]);
    assert.equal(opt.stepCount(1), 0, "a parameter without a gradient is skipped");
    opt.dispose();
    for (const p of ps) p.dispose();
  });

  test("loadState rejects mismatches with errors naming the key", () => {
    const ps = makeParams();
    const opt = new AdamW(ps);
    tidy(() => ps.forEach((p) => (p.grad = zeros(p.shape).add(0.5))));
    opt.step();
    const good = opt.stateTensors();
    const meta = opt.stateMeta();
    const fresh = new AdamW(ps);
    tidy(() => {
      const wrongShape = { ...good, "state.1.exp_avg": zeros([5]) };
      assert.throws(() => fresh.loadState(wrongShape, meta), /'state\.1\.exp_avg' has shape \[5\], but parameter 1 has shape \[6\]/);
      const wrongDtype = { ...good, "state.2.exp_avg_sq": zeros([1, 6], { dtype: "float64" }) };
      assert.throws(() => fresh.loadState(wrongDtype, meta), /'state\.2\.exp_avg_sq' has dtype float64, but parameter 2 is float32/);
      const missing: Record<string, Tensor> = { ...good };
      delete missing["state.0.exp_avg"];
      assert.throws(() => fresh.loadState(missing, meta), /state tensor 'state\.0\.exp_avg' is missing/);
      assert.throws(() => fresh.loadState({ ...good, "state.9.exp_avg": zeros([1]) }, meta), /unexpected state tensor\(s\) not described by meta\.state: state\.9\.exp_avg/);
      assert.throws(() => fresh.loadState(good, { ...meta, optimizer: "SGD" }), /saved by SGD, not AdamW/);
      assert.throws(() => fresh.loadState(good, { ...meta, groups: [...meta.groups, meta.groups[0]] }), /meta\.groups has 2 groups, this optimizer has 1/);
      const badOpt = { ...meta, groups: [{ ...meta.groups[0], options: { ...meta.groups[0].options, lr: -1 } }] };
      assert.throws(() => fresh.loadState(good, badOpt), /meta\.groups\[0\]\.options: lr must be in \[0, Infinity\], got -1/);
      const sgd = new SGD(ps, { lr: 0.1, momentum: 0.9 });
      assert.throws(() => sgd.loadState(good, { ...meta, optimizer: "SGD", groups: sgd.stateMeta().groups }), /'state\.0\.exp_avg': SGD with these options keeps no 'exp_avg' \(expected one of: momentum_buffer\)/);
      sgd.dispose();
    });
    // Nothing changed in the failed loads: the fresh optimizer still has no state.
    assert.deepEqual(fresh.stateTensors(), {});
    for (const o of [opt, fresh]) o.dispose();
    for (const p of ps) p.dispose();
  });
});

describe("optimizer behaviour", () => {
  test("zeroGrad drops gradients (or zeroes them with setToNone = false); params without grads are left alone", () => {
    const ps = makeParams();
    const opt = new SGD(ps, { lr: 0.1 });
    const before = ps[1].toFlatArray();
    tidy(() => {
      ps[0].grad = zeros([6, 4]).add(1);
      ps[2].grad = zeros([1, 6]).add(1);
    });
    opt.step();
    assert.deepEqual(ps[1].toFlatArray(), before);
    opt.zeroGrad(false);
    tidy(() => assert.deepEqual(ps[0].grad!.toFlatArray(), new Array(24).fill(0)));
    opt.zeroGrad();
    assert.equal(ps[0].grad, null);
    opt.dispose();
    for (const p of ps) p.dispose();
  });

  test("paramGroups[i].lr is read at each step (lr 0 leaves AdamW params unchanged)", () => {
    const ps = makeParams();
    const opt = new AdamW(ps, { lr: 0.1 });
    const w0 = ps[0].toFlatArray();
    opt.paramGroups[0].lr = 0;
    tidy(() => ps.forEach((p) => (p.grad = zeros(p.shape).add(1))));
    opt.step();
    assert.deepEqual(ps[0].toFlatArray(), w0);
    opt.paramGroups[0].lr = 0.1;
    opt.step();
    assert.notDeepEqual(ps[0].toFlatArray(), w0);
    opt.dispose();
    for (const p of ps) p.dispose();
  });

  test("step() leaves the live tensor count flat, inside or outside tidy; dispose() frees the state", () => {
    const ps = makeParams();
    const live0 = liveTensors();
    const opt = new AdamW(ps, { amsgrad: true });
    tidy(() => ps.forEach((p) => (p.grad = zeros(p.shape).add(1))));
    opt.step();
    const afterFirst = liveTensors();
    assert.equal(afterFirst - live0, 9, "3 buffers for each of 3 params");
    for (let i = 0; i < 5; i++) opt.step();
    tidy(() => opt.step());
    assert.equal(liveTensors(), afterFirst);
    opt.dispose();
    assert.equal(liveTensors(), live0);
    assert.throws(() => opt.step(), /AdamW\.step: the optimizer was disposed/);
    for (const p of ps) p.dispose();
  });

  test("options and parameters are validated with clear errors", () => {
    const ps = makeParams();
    assert.throws(() => new AdamW([]), /AdamW: expected a non-empty array/);
    assert.throws(() => new AdamW(ps, { lr: -1 }), /AdamW: lr must be in \[0, Infinity\], got -1/);
    assert.throws(() => new AdamW(ps, { betas: [0.9, 1] }), /betas\[1\] must be in \[0, 1\), got 1/);
    assert.throws(() => new AdamW([{ params: [ps[0]], weight_decay: 0.1 } as never]), /paramGroups\[0\]: unknown option 'weight_decay'; known: lr, betas, eps, weightDecay, amsgrad/);
    assert.throws(() => new AdamW([{ params: [ps[0]] }, { params: [ps[1], ps[0]] }]), /paramGroups\[1\]\.params\[1\]: the same parameter appears more than once/);
    tidy(() => assert.throws(() => new AdamW([ps[0].mul(2)]), /can't optimize a non-leaf tensor/));
    tidy(() => assert.throws(() => new SGD([tensor([1n, 2n])], { lr: 1 }), /only floating-point tensors can be optimized, got int64/));
    assert.throws(() => new SGD(ps, { lr: 0.1, nesterov: true }), /nesterov momentum requires momentum > 0 and dampening 0/);
    assert.throws(() => new SGD(ps, {} as never), /SGD: options\.lr is required/);
    for (const p of ps) p.dispose();
  });

  test("parameters updated in several list-op chunks match one optimizer per parameter exactly", () => {
    const live0 = liveTensors();
    manualSeed(3);
    // 3 x 700K elements: more than one chunk of FOREACH_CHUNK_ELEMENTS (2^20).
    const make = () => tidy(() => [randn([700, 1000]), randn([700_000]), randn([7, 100_000])]).map((t) => keep(t.requiresGrad_(true)));
    const together = make();
    manualSeed(3);
    const apart = make();
    const grads = tidy(() => together.map((p) => keep(randn(p.shape))));
    const one = new AdamW(together, { lr: 0.01 });
    const each = apart.map((p) => new AdamW([p], { lr: 0.01 }));
    for (let s = 0; s < 2; s++) {
      together.forEach((p, i) => (p.grad = grads[i]));
      apart.forEach((p, i) => (p.grad = grads[i]));
      one.step();
      each.forEach((o) => o.step());
    }
    together.forEach((p, i) => assert.ok(tidy(() => p.eq(apart[i]).all().item() === true), `param ${i}`));
    for (const o of [one, ...each]) o.dispose();
    for (const t of [...together, ...apart, ...grads]) t.dispose();
    assert.equal(liveTensors(), live0);
  });

  test("an option given as undefined keeps the default", () => {
    const ps = makeParams();
    const opt = new AdamW([{ params: [ps[0]], lr: undefined }], { weightDecay: undefined });
    assert.equal(opt.paramGroups[0].lr, 1e-3);
    assert.equal(opt.paramGroups[0].weightDecay, 0.01);
    opt.dispose();
    for (const p of ps) p.dispose();
  });

  test("groups do not share option arrays", () => {
    const ps = makeParams();
    const opt = new AdamW([{ params: [ps[0]] }, { params: [ps[1]] }]);
    opt.paramGroups[0].betas[0] = 0.5;
    assert.equal(opt.paramGroups[1].betas[0], 0.9);
    assert.equal(opt.defaults.betas[0], 0.9);
    opt.dispose();
    for (const p of ps) p.dispose();
  });
});
