// Ops against reference outputs computed by PyTorch on the same inputs
// (test/fixtures/ops.json, made by scripts/fixtures/make_op_fixtures.py).
// Float outputs: |diff| <= 1e-5 + 1e-5 |expected| (float32 arithmetic on
// both sides; composites may round differently from PyTorch's kernels).
// Random draws: exact, since both sides use the same libtorch generator.
import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { type DType, F, Generator, manualSeed, rand, randint, randn, randperm, type Tensor, tensor, tidy } from "../../src/torch/index.js";
import { assertClose } from "../helpers/close.js";

interface Encoded {
  dtype: DType;
  shape: number[];
  data: number[];
}
interface Case {
  params: Record<string, number>;
  inputs: Record<string, Encoded>;
  outputs: Record<string, Encoded>;
}

const file = fileURLToPath(new URL("../../../test/fixtures/ops.json", import.meta.url));
const fixtures = JSON.parse(fs.readFileSync(file, "utf8")) as { torch: string; cases: Record<string, Case> };

function decode(e: Encoded): Tensor {
  switch (e.dtype) {
    case "int64":
      return tensor(BigInt64Array.from(e.data, (v) => BigInt(v)), { shape: e.shape });
    case "bool":
      return tensor(Uint8Array.from(e.data), { shape: e.shape, dtype: "bool" });
    case "float64":
      return tensor(Float64Array.from(e.data), { shape: e.shape });
    default:
      return tensor(Float32Array.from(e.data), { shape: e.shape });
  }
}

/** Runs one case: `compute` gets the decoded inputs and returns outputs by name. */
const registered = new Set<string>();

function check(name: string, compute: (x: Record<string, Tensor>, params: Record<string, number>) => Record<string, Tensor>, tol = 1e-5): void {
  registered.add(name);
  test(`fixture ${name}`, () => {
    const c = fixtures.cases[name];
    assert.ok(c, `fixture case '${name}' is missing from ops.json; rerun scripts/fixtures/make_op_fixtures.py`);
    tidy(() => {
      const inputs = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, decode(v)]));
      const got = compute(inputs, c.params);
      assert.deepEqual(Object.keys(got).sort(), Object.keys(c.outputs).sort(), `${name}: output names`);
      for (const [k, exp] of Object.entries(c.outputs)) {
        const t = got[k];
        assert.equal(t.dtype, exp.dtype, `${name}.${k}: dtype`);
        assert.deepEqual(t.shape, exp.shape, `${name}.${k}: shape`);
        if (exp.dtype === "int64" || exp.dtype === "bool") assert.deepEqual(t.toFlatArray(), exp.data, `${name}.${k}`);
        else assertClose(t, exp.data, { atol: tol, rtol: tol }, `${name}.${k}`);
      }
    });
  });
}

/** Random streams must equal PyTorch's bit for bit. */
function checkExact(name: string, compute: (x: Record<string, Tensor>) => Record<string, Tensor>): void {
  check(name, compute, 0);
}

// ---- random ----
checkExact("random.global_seed0", () => {
  manualSeed(0);
  return { randn: randn([2, 3]), rand: rand([5]), randint: randint(0, 10, [6]), randn64: randn([3], { dtype: "float64" }) };
});
checkExact("random.generator123", () => {
  const g = new Generator(123);
  manualSeed(5); // the global stream must not matter
  return { randn: randn([4], { generator: g }), rand: rand([3], { generator: g }), randint: randint(-5, 5, [2, 3], { generator: g }) };
});
checkExact("random.multinomial_seed7", (x) => {
  manualSeed(7);
  return { noReplacement: x.probs.multinomial(3, false), replacement: x.probs2.multinomial(8, true) };
});
checkExact("random.multinomial_generator99", (x) => ({ replacement: x.probs2.multinomial(5, true, new Generator(99)) }));
checkExact("random.randperm_seed3", () => {
  manualSeed(3);
  return { perm: randperm(8) };
});

// ---- attention (composite on libtorch 1.13, fused on 2.x) ----
check("sdpa.plain", (x) => ({ out: F.scaledDotProductAttention(x.q, x.k, x.v) }));
check("sdpa.causal_rect", (x) => ({ out: F.scaledDotProductAttention(x.q, x.k, x.v, { isCausal: true }) }));
check("sdpa.causal_square", (x) => ({ out: F.scaledDotProductAttention(x.q, x.k, x.v, { isCausal: true }) }));
check("sdpa.bool_mask", (x) => ({ out: F.scaledDotProductAttention(x.q, x.k, x.v, { attnMask: x.mask }) }));
check("sdpa.float_mask", (x) => ({ out: F.scaledDotProductAttention(x.q, x.k, x.v, { attnMask: x.mask }) }));
check("sdpa.scale", (x, p) => ({ out: F.scaledDotProductAttention(x.q, x.k, x.v, { scale: p.scale }) }));

// ---- norms and activations ----
check("rmsNorm", (x, p) => ({ out: F.rmsNorm(x.x, x.w, p.eps) }));
check("layerNorm.last", (x) => ({ out: F.layerNorm(x.x, [4], x.w, x.b, 1e-5) }));
check("layerNorm.two", (x) => ({ out: F.layerNorm(x.x, [3, 4]) }));
check("gelu", (x) => ({ exact: F.gelu(x.x), tanh: F.gelu(x.x, "tanh") }));
check("activations", (x) => ({ silu: F.silu(x.x), sigmoid: F.sigmoid(x.x), tanh: F.tanh(x.x), relu: F.relu(x.x) }));
check("softmax", (x) => ({ softmax: F.softmax(x.x, -1), logSoftmax: F.logSoftmax(x.x, -1), softmax0: F.softmax(x.x, 0) }));

// ---- losses ----
check("crossEntropy", (x) => {
  const logits = x.logits.requiresGrad_(true);
  const smooth = F.crossEntropy(logits, x.target, { labelSmoothing: 0.1 });
  smooth.backward();
  return {
    none: F.crossEntropy(logits, x.target, { reduction: "none" }),
    mean: F.crossEntropy(logits, x.target),
    sum: F.crossEntropy(logits, x.target, { reduction: "sum" }),
    smooth: smooth.detach(),
    smoothNone: F.crossEntropy(logits, x.target, { labelSmoothing: 0.1, reduction: "none" }),
    weighted: F.crossEntropy(logits, x.target, { weight: x.weight }),
    weightedSmooth: F.crossEntropy(logits, x.target, { weight: x.weight, labelSmoothing: 0.2 }),
    smoothGrad: logits.grad!,
  };
});
check("crossEntropy.nd", (x) => ({ mean: F.crossEntropy(x.logits, x.target), none: F.crossEntropy(x.logits, x.target, { reduction: "none" }) }));

// ---- reductions ----
check("reduce", ({ x }) => ({
  varAll: x.var(),
  var1c0k: x.var(1, true, 0),
  std0c2: x.std(0, false, 2),
  var01: x.var([0, 1]),
  stdAll: x.std(),
  logsumexp1: x.logsumexp(1),
  logsumexp0k: x.logsumexp(0, true),
  mean1: x.mean(1),
  sum0k: x.sum(0, true),
  cumsum1: x.cumsum(1),
  norm: x.norm(),
}));

// ---- products and convolution ----
check("matmul.broadcast", (x) => ({ out: x.a.matmul(x.b) }));
check("bmm", (x) => ({ out: x.a.bmm(x.b) }));
check("linear", (x) => ({ out: F.linear(x.x, x.w, x.b), noBias: F.linear(x.x, x.w) }));
check("conv2d.stride_pad", (x) => ({ out: F.conv2d(x.x, x.w, x.b, { stride: 2, padding: 1 }) }));
check("conv2d.groups_dilation", (x) => ({ out: F.conv2d(x.x, x.w, null, { dilation: 2, groups: 2 }) }));

// ---- shape, sorting, embedding ----
check("pad", ({ x }) => ({
  constant: F.pad(x, [1, 2], "constant", 0.5),
  constant2d: F.pad(x, [1, 0, 0, 2]),
  reflect: F.pad(x, [2, 1], "reflect"),
  replicate: F.pad(x, [1, 2], "replicate"),
}));
check("sorting", ({ x }) => {
  const top = x.topk(3, 1);
  const sorted = x.sort(1, true);
  return {
    topkValues: top.values,
    topkIndices: top.indices,
    sortValues: sorted.values,
    sortIndices: sorted.indices,
    argmax0: x.argmax(0),
    max1: x.max(1).values,
    min1idx: x.min(1).indices,
  };
});
check("embedding", (x) => ({ out: F.embedding(x.ids, x.w) }));

test("every fixture case has a check", () => {
  // A case added to the script but not here would silently go untested.
  assert.deepEqual(Object.keys(fixtures.cases).sort(), [...registered].sort());
});
