// Autograd (requiresGrad, backward with and without a gradient, .grad,
// zeroing, detach), grad-mode scopes, autocast, and a self-test of the
// finite-difference checker.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  autocast,
  autocastState,
  backward,
  enableGrad,
  F,
  isGradEnabled,
  manualSeed,
  noGrad,
  ones,
  randn,
  setGradEnabled,
  tensor,
  tidy,
} from "../../src/torch/index.js";
import { assertClose } from "../helpers/close.js";
import { gradcheck } from "../helpers/gradcheck.js";

describe("autograd", () => {
  test("backward of a scalar fills .grad of leaves; d(sum x^2)/dx = 2x", () =>
    tidy(() => {
      const x = tensor([1, -2, 3], { requiresGrad: true });
      assert.equal(x.isLeaf, true);
      assert.equal(x.grad, null, "no gradient before backward");
      const y = x.square().sum();
      assert.equal(y.requiresGrad, true);
      assert.equal(y.isLeaf, false);
      assert.match(y.gradFn ?? "", /Sum/);
      y.backward();
      assert.deepEqual(x.grad!.toFlatArray(), [2, -4, 6]);
    }));

  test("backward with an explicit gradient for a non-scalar output (vector-Jacobian product)", () =>
    tidy(() => {
      const x = tensor([1, 2], { requiresGrad: true });
      const y = x.mul(3);
      y.backward(tensor([1, 10]));
      assert.deepEqual(x.grad!.toFlatArray(), [3, 30]);
      const z = tensor([1, 2], { requiresGrad: true });
      assert.throws(() => z.mul(2).backward(), /backward: output of shape \[2\] is not a scalar; pass a gradient/);
    }));

  test("gradients accumulate across backward calls; zeroing with zero_() or grad = null", () =>
    tidy(() => {
      const w = tensor([1, 1], { requiresGrad: true });
      w.mul(2).sum().backward();
      w.mul(3).sum().backward();
      assert.deepEqual(w.grad!.toFlatArray(), [5, 5]);
      w.grad!.zero_();
      assert.deepEqual(w.grad!.toFlatArray(), [0, 0], "zero_ acts on the stored gradient");
      w.mul(4).sum().backward();
      assert.deepEqual(w.grad!.toFlatArray(), [4, 4]);
      w.grad = null;
      assert.equal(w.grad, null);
      w.sum().backward();
      assert.deepEqual(w.grad!.toFlatArray(), [1, 1]);
      w.grad = tensor([7, 7]);
      assert.deepEqual(w.grad!.toFlatArray(), [7, 7]);
    }));

  test("retainGraph allows a second backward; without it the graph is freed", () =>
    tidy(() => {
      const x = tensor([2], { requiresGrad: true });
      const y = x.exp().sum();
      y.backward(undefined, { retainGraph: true });
      y.backward();
      assertClose(x.grad!, 2 * Math.exp(2), { atol: 1e-5, rtol: 1e-6 });
      assert.throws(() => y.backward(), /backward: .*(second time|freed)/);
    }));

  test("createGraph gives a differentiable gradient (second derivative of x^3 is 6x)", () =>
    tidy(() => {
      const x = tensor([2], { dtype: "float64", requiresGrad: true });
      x.pow(3).sum().backward(undefined, { createGraph: true });
      const g = x.grad!;
      assert.deepEqual(g.toFlatArray(), [12]);
      assert.equal(g.requiresGrad, true);
      x.grad = null;
      g.sum().backward();
      assert.deepEqual(x.grad!.toFlatArray(), [12]);
    }));

  test("backward from several outputs at once sums their contributions", () =>
    tidy(() => {
      const x = tensor([1, 2], { requiresGrad: true });
      backward([x.sum(), x.mul(x)], [null, tensor([1, 1])]);
      assert.deepEqual(x.grad!.toFlatArray(), [3, 5]);
    }));

  test("detach cuts the graph; requiresGrad can be switched on a leaf", () =>
    tidy(() => {
      const x = tensor([3], { requiresGrad: true });
      const d = x.detach();
      assert.equal(d.requiresGrad, false);
      const y = x.mul(d).sum(); // d is a constant: dy/dx = d = 3
      y.backward();
      assert.deepEqual(x.grad!.toFlatArray(), [3]);
      const leaf = tensor([1]);
      leaf.requiresGrad = true;
      assert.equal(leaf.requiresGrad, true);
      assert.throws(() => tensor([1]).mul(2).sum().backward(), /backward: output 0 does not require grad/);
    }));
});

describe("grad mode", () => {
  test("noGrad records nothing and restores the mode, even when the body throws", () =>
    tidy(() => {
      const x = tensor([1], { requiresGrad: true });
      assert.equal(isGradEnabled(), true);
      const y = noGrad(() => {
        assert.equal(isGradEnabled(), false);
        return x.mul(2);
      });
      assert.equal(y.requiresGrad, false);
      assert.equal(isGradEnabled(), true);
      assert.throws(() =>
        noGrad(() => {
          throw new Error("boom");
        }),
      /boom/);
      assert.equal(isGradEnabled(), true, "restored after a throw");
    }));

  test("enableGrad inside noGrad records; nesting restores each level", () =>
    tidy(() => {
      const x = tensor([1], { requiresGrad: true });
      noGrad(() => {
        const inner = enableGrad(() => x.mul(2));
        assert.equal(inner.requiresGrad, true);
        assert.equal(isGradEnabled(), false);
        noGrad(() => assert.equal(isGradEnabled(), false));
        assert.equal(isGradEnabled(), false);
      });
      assert.equal(isGradEnabled(), true);
      setGradEnabled(false);
      try {
        assert.equal(x.mul(2).requiresGrad, false);
      } finally {
        setGradEnabled(true);
      }
    }));

  test("a noGrad body that returns a Promise is an error and the mode is restored", async () => {
    assert.throws(() => noGrad(() => Promise.resolve(1)), /noGrad\/enableGrad: the body returned a Promise/);
    assert.equal(isGradEnabled(), true);
  });
});

describe("autocast", () => {
  test("cpu/bfloat16: matmul and linear run in bfloat16, elementwise ops keep float32, state restored", () =>
    tidy(() => {
      const a = ones([4, 4]);
      const w = ones([3, 4], { requiresGrad: true });
      assert.deepEqual(autocastState("cpu").enabled, false);
      const [mm, lin, added] = autocast("cpu", () => {
        assert.deepEqual(autocastState("cpu"), { enabled: true, dtype: "bfloat16" });
        return [a.matmul(a), F.linear(a, w), a.add(a)];
      });
      assert.equal(mm.dtype, "bfloat16");
      assert.equal(lin.dtype, "bfloat16");
      assert.equal(added.dtype, "float32");
      assert.deepEqual(mm.toFlatArray().slice(0, 2), [4, 4]);
      assert.equal(autocastState("cpu").enabled, false);
      assert.equal(a.matmul(a).dtype, "float32", "outside the scope: float32 again");
      // Gradients reach the float32 parameter in float32.
      lin.float().sum().backward();
      assert.equal(w.grad!.dtype, "float32");
      assert.deepEqual(w.grad!.toFlatArray().slice(0, 2), [4, 4]);
    }));

  test("autocast restores its state after a throw and refuses unsupported dtypes and Promises", () => {
    assert.throws(() =>
      autocast("cpu", () => {
        throw new Error("inside");
      }),
    /inside/);
    assert.equal(autocastState("cpu").enabled, false);
    assert.throws(() => autocast("cpu", () => 1, "float16"), /autocast: CPU supports bfloat16 only, got float16/);
    assert.throws(() => autocast("cpu", () => Promise.resolve()), /autocast: the body returned a Promise/);
    assert.equal(autocastState("cpu").enabled, false);
  });
});

describe("the gradient checker itself", () => {
  test("passes a correct gradient and rejects a wrong one", () =>
    tidy(() => {
      manualSeed(1);
      const x = randn([4], { dtype: "float64" });
      const worst = gradcheck((t) => t.mul(t), [x]);
      assert.ok(worst < 1e-6, `worst difference ${worst}`);
      // x * detach(x): the value is x^2 but autograd sees only one factor (gradient x, not 2x).
      assert.throws(() => gradcheck((t) => t.mul(t.detach()), [x]), /gradcheck: input 0 .* element 0: autograd/);
      assert.throws(() => gradcheck((t) => t.mul(2), [x.float()]), /must be float64/);
      // A second input that the output ignores must get a zero gradient.
      gradcheck((a, b) => a.exp(), [x, x.add(1)]);
    }));
});
