// Deterministic release: tidy / keep / dispose, checked with the addon's
// live-handle counter.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { dispose, keep, liveTensors, noGrad, ones, scopeDepth, type Tensor, tensor, tidy } from "../../src/torch/index.js";
import { gradcheck } from "../helpers/gradcheck.js";

/** Runs fn and returns how many handles it left alive. */
function leakOf(fn: () => void): number {
  const before = liveTensors();
  fn();
  return liveTensors() - before;
}

describe("tidy", () => {
  test("releases every intermediate; the returned tensor survives", () => {
    let kept!: Tensor;
    const leaked = leakOf(() => {
      kept = tidy(() => {
        const a = ones([3]);
        const b = a.mul(2).add(1);
        return b.sum();
      });
    });
    assert.equal(leaked, 1, "only the returned tensor is live");
    assert.equal(kept.item(), 9);
    kept.dispose();
    assert.equal(leakOf(() => tidy(() => void ones([4]).exp())), 0);
  });

  test("tensors inside returned arrays, plain objects and Maps survive; others do not", () => {
    let a!: Tensor, b!: Tensor, c!: Tensor, dropped!: Tensor;
    const leaked = leakOf(() => {
      const out = tidy(() => {
        dropped = ones([1]);
        return { list: [ones([1])], nested: { x: ones([2]) }, map: new Map([["k", ones([3])]]), n: 5 };
      });
      a = out.list[0];
      b = out.nested.x;
      c = out.map.get("k")!;
    });
    assert.equal(leaked, 3);
    assert.equal(dropped.isDisposed, true);
    assert.deepEqual([a.numel, b.numel, c.numel], [1, 2, 3]);
    dispose([a, { b }, new Map([[0, c]])]);
    assert.equal(a.isDisposed && b.isDisposed && c.isDisposed, true);
  });

  test("nested scopes: a tensor returned by the inner scope moves to the outer one", () => {
    let inner!: Tensor;
    const leaked = leakOf(() => {
      tidy("outer", () => {
        inner = tidy("inner", () => ones([2]).mul(3));
        assert.equal(inner.isDisposed, false, "alive after the inner scope ends");
        assert.equal(scopeDepth(), 1);
        assert.deepEqual(inner.toFlatArray(), [3, 3]);
      });
    });
    assert.equal(leaked, 0);
    assert.equal(inner.isDisposed, true, "released when the outer scope ends");
    assert.equal(scopeDepth(), 0);
  });

  test("returning a tensor from an outer scope does not move or free it", () => {
    tidy(() => {
      const outer = ones([1]);
      const same = tidy(() => outer);
      assert.equal(same, outer);
      assert.equal(outer.isDisposed, false);
    });
  });

  test("keep() exempts a tensor from every scope; dispose() frees it", () => {
    let k!: Tensor;
    const leaked = leakOf(() => {
      tidy(() => {
        tidy(() => {
          k = keep(ones([2]));
        });
      });
    });
    assert.equal(leaked, 1);
    assert.equal(k.isDisposed, false);
    k.dispose();
    assert.equal(k.isDisposed, true);
    assert.throws(() => k.add(1), /aten::add\.Scalar: argument 'self' is a released tensor/);
  });

  test("a body that throws releases its tensors and rethrows", () => {
    let t!: Tensor;
    const leaked = leakOf(() => {
      assert.throws(
        () =>
          tidy(() => {
            t = ones([3]);
            ones([2]).matmul(ones([3])); // shape mismatch
          }),
        /aten::matmul/,
      );
    });
    assert.equal(leaked, 0);
    assert.equal(t.isDisposed, true);
    assert.equal(scopeDepth(), 0);
  });

  test("a body that returns a Promise is an error, and its tensors are released", async () => {
    let t!: Tensor;
    const leaked = leakOf(() => {
      assert.throws(
        () =>
          tidy("step", async () => {
            t = ones([2]);
            return t;
          }),
        /step: the scope's body returned a Promise; .*do async work outside tidy\(\)/,
      );
    });
    assert.equal(leaked, 0);
    assert.equal(t.isDisposed, true);
    assert.equal(scopeDepth(), 0);
  });

  test("a disposed tensor inside a scope is not disposed twice and the scope still ends cleanly", () => {
    const leaked = leakOf(() => {
      tidy(() => {
        const a = ones([2]);
        a.dispose();
        const b = tensor([1]);
        b.dispose();
        return b; // returning an already released tensor is allowed
      });
    });
    assert.equal(leaked, 0);
  });
});

test("autograd inside a scope: returned gradients survive, the graph's tensors are freed", () => {
  const w = keep(ones([3], { requiresGrad: true }));
  const before = liveTensors();
  const g = tidy(() => {
    w.mul(w).sum().backward();
    return w.grad!;
  });
  assert.deepEqual(g.toFlatArray(), [2, 2, 2]);
  assert.equal(liveTensors(), before + 1);
  g.dispose();
  w.grad = null;
  w.dispose();
});

test("noGrad and the gradient checker leave no handles behind", () => {
  const x = keep(tensor([0.5, -1, 2], { dtype: "float64" }));
  assert.equal(
    leakOf(() => {
      gradcheck((t) => t.exp().mul(t), [x]);
      tidy(() => void noGrad(() => x.mul(2)));
    }),
    0,
  );
  x.dispose();
});
