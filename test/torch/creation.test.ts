// Creation from JS data, dtypes, devices, data copied back, factory
// functions and seeded random draws. Exact comparisons unless stated.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  arange,
  availableDevices,
  type DType,
  empty,
  eye,
  fromBytes,
  full,
  fullLike,
  Generator,
  getRngState,
  linspace,
  manualSeed,
  ones,
  onesLike,
  rand,
  randint,
  randn,
  randperm,
  scalar,
  setRngState,
  tensor,
  tidy,
  zeros,
  zerosLike,
} from "../../src/torch/index.js";
import { assertClose } from "../helpers/close.js";

describe("tensor() from JS data", () => {
  test("nested arrays give their shape, float32 by default, values row-major", () =>
    tidy(() => {
      const t = tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      assert.deepEqual(t.shape, [2, 3]);
      assert.equal(t.dtype, "float32");
      assert.equal(t.device, "cpu");
      assert.equal(t.ndim, 2);
      assert.equal(t.numel, 6);
      assert.equal(t.size(-1), 3);
      assert.deepEqual(t.toList(), [
        [1, 2, 3],
        [4, 5, 6],
      ]);
    }));

  test("booleans give bool, bigints give int64, a scalar gives a 0-d tensor", () =>
    tidy(() => {
      const b = tensor([true, false, true]);
      assert.equal(b.dtype, "bool");
      assert.deepEqual(b.toList(), [true, false, true]);
      const i = tensor([1n, -2n, 9007199254740993n]);
      assert.equal(i.dtype, "int64");
      assert.deepEqual(Array.from(i.toTypedArray() as BigInt64Array), [1n, -2n, 9007199254740993n]);
      const s = tensor(2.5);
      assert.deepEqual(s.shape, []);
      assert.equal(s.item(), 2.5);
      const sc = scalar(7, { dtype: "int32" });
      assert.deepEqual(sc.shape, []);
      assert.equal(sc.dtype, "int32");
      assert.equal(sc.item(), 7);
      assert.deepEqual(tensor([]).shape, [0]);
      assert.deepEqual(tensor([[], []]).shape, [2, 0]);
    }));

  test("typed arrays keep their element type; shape reshapes the flat data", () =>
    tidy(() => {
      const cases: [ArrayBufferView, DType][] = [
        [new Float32Array([1.5, -2]), "float32"],
        [new Float64Array([1.5, -2]), "float64"],
        [new BigInt64Array([3n, -4n]), "int64"],
        [new Int32Array([3, -4]), "int32"],
        [new Uint8Array([3, 255]), "uint8"],
      ];
      for (const [data, dtype] of cases) {
        const t = tensor(data as Float32Array);
        assert.equal(t.dtype, dtype);
        assert.deepEqual(t.toTypedArray(), data, dtype);
      }
      const m = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [3, 2] });
      assert.deepEqual(m.toList(), [
        [1, 2],
        [3, 4],
        [5, 6],
      ]);
      // A subarray view copies only its own window.
      const sub = new Float32Array([9, 1, 2, 9]).subarray(1, 3);
      assert.deepEqual(tensor(sub).toFlatArray(), [1, 2]);
    }));

  test("Uint16Array carries bfloat16 / float16 bit patterns", () =>
    tidy(() => {
      // bf16: 1.0 = 0x3F80, -2.0 = 0xC000, 0.15625 = 0x3E20. f16: 1.0 = 0x3C00, 0.5 = 0x3800, -0 = 0x8000.
      const bf = tensor(new Uint16Array([0x3f80, 0xc000, 0x3e20]), { dtype: "bfloat16" });
      assert.equal(bf.dtype, "bfloat16");
      assert.deepEqual(bf.toFlatArray(), [1, -2, 0.15625]);
      assert.deepEqual(Array.from(bf.toBytes()), [0x80, 0x3f, 0x00, 0xc0, 0x20, 0x3e]);
      const h = tensor(new Uint16Array([0x3c00, 0x3800, 0x8000]), { dtype: "float16" });
      assert.deepEqual(h.toFlatArray(), [1, 0.5, -0]);
    }));

  test("an explicit dtype converts: fractions truncate to ints, non-zero is true", () =>
    tidy(() => {
      assert.deepEqual(tensor([1.7, -1.7, 2], { dtype: "int64" }).toFlatArray(), [1, -1, 2]);
      assert.deepEqual(tensor([0, 2, -0.5], { dtype: "bool" }).toList(), [false, true, true]);
      assert.deepEqual(tensor(new Float32Array([0, 3]), { dtype: "bool" }).toList(), [false, true]);
      assert.deepEqual(tensor(new Uint8Array([0, 7]), { dtype: "bool" }).toList(), [false, true]);
      assert.deepEqual(tensor(new Int32Array([1, 2]), { dtype: "float64" }).toTypedArray(), new Float64Array([1, 2]));
      // bfloat16 keeps 8 significant bits: 1 + 2^-8 rounds (to even) to 1, 1 + 2^-7 is exact.
      assert.deepEqual(tensor([1 + 2 ** -8, 1 + 2 ** -7], { dtype: "bfloat16" }).toFlatArray(), [1, 1 + 2 ** -7]);
      // float16 tops out at 65504; beyond it rounds to infinity.
      assert.deepEqual(tensor([65504, 70000, 1 + 2 ** -11], { dtype: "float16" }).toFlatArray(), [65504, Infinity, 1]);
    }));

  test("requiresGrad option makes a leaf that requires grad", () =>
    tidy(() => {
      const t = tensor([1, 2], { requiresGrad: true });
      assert.equal(t.requiresGrad, true);
      assert.equal(t.isLeaf, true);
      assert.equal(zeros([2], { requiresGrad: true }).requiresGrad, true);
      assert.equal(ones([2]).requiresGrad, false);
    }));
});

describe("dtypes and data copied back", () => {
  const expectations: [DType, string, number][] = [
    ["float32", "Float32Array", 4],
    ["float64", "Float64Array", 8],
    ["bfloat16", "Float32Array", 2],
    ["float16", "Float32Array", 2],
    ["int64", "BigInt64Array", 8],
    ["int32", "Int32Array", 4],
    ["uint8", "Uint8Array", 1],
    ["bool", "Uint8Array", 1],
  ];
  for (const [dtype, arrayName, bytes] of expectations) {
    test(`${dtype}: factories, toTypedArray as ${arrayName}, ${bytes}-byte elements, conversions`, () =>
      tidy(() => {
        const t = full([2, 3], dtype === "bool" ? true : 3, { dtype });
        assert.equal(t.dtype, dtype);
        const ta = t.toTypedArray();
        assert.equal(ta.constructor.name, arrayName);
        assert.equal(ta.length, 6);
        assert.equal(t.toBytes().byteLength, 6 * bytes);
        assert.deepEqual(t.toFlatArray(), new Array(6).fill(dtype === "bool" ? 1 : 3));
        assert.deepEqual(zeros([4], { dtype }).toFlatArray(), [0, 0, 0, 0]);
        assert.deepEqual(ones([2], { dtype }).toFlatArray(), [1, 1]);
        // .to(dtype) and back keeps small integers exactly.
        const back = tensor([0, 1, 2]).to(dtype).to("float32");
        assert.deepEqual(back.toFlatArray(), dtype === "bool" ? [0, 1, 1] : [0, 1, 2]);
        assert.equal(t.isFloatingPoint, ["float32", "float64", "bfloat16", "float16"].includes(dtype));
        // Raw bytes round-trip through fromBytes.
        const again = fromBytes(t.toBytes(), dtype, [2, 3]);
        assert.deepEqual(again.toFlatArray(), t.toFlatArray());
      }));
  }

  test("item() gives a number (int64 too) or a boolean", () =>
    tidy(() => {
      assert.equal(tensor([[2.5]]).item(), 2.5);
      assert.equal(tensor([5n]).item(), 5);
      assert.equal(tensor([true]).item() as unknown, true);
      assert.equal(full([1], -3, { dtype: "int32" }).item(), -3);
      assert.equal(tensor([0.1], { dtype: "float64" }).item(), 0.1);
    }));

  test("conversion shortcuts give the named dtype and a copy", () =>
    tidy(() => {
      const t = tensor([1.5, -2.5]);
      assert.equal(t.double().dtype, "float64");
      assert.equal(t.half().dtype, "float16");
      assert.equal(t.bfloat16().dtype, "bfloat16");
      assert.deepEqual(t.long().toFlatArray(), [1, -2]);
      assert.deepEqual(t.bool().toList(), [true, true]);
      assert.equal(tensor([1n]).float().dtype, "float32");
      // As torch: .to() of the dtype a tensor has copies nothing; it is a new
      // handle to the same storage, so disposing it leaves the input alive.
      const same = t.to("float32");
      assert.equal(same.isSameTensor(t), false);
      same.fill_(0);
      assert.deepEqual(t.toFlatArray(), [0, 0], ".to() of the same dtype shares storage");
      same.dispose();
      assert.deepEqual(t.add(1).toFlatArray(), [1, 1]);
      const other = t.to("float64");
      other.fill_(5);
      assert.deepEqual(t.toFlatArray(), [0, 0], ".to() of another dtype copies");
    }));
});

describe("devices", () => {
  for (const device of availableDevices()) {
    test(`${device}: create, compute, .to() across devices, copy back`, () =>
      tidy(() => {
        const a = tensor([1, 2, 3], { device });
        assert.equal(a.device.startsWith(device), true);
        const b = a.mul(2).add(ones([3], { device }));
        assert.deepEqual(b.toFlatArray(), [3, 5, 7]);
        const onCpu = b.to("cpu");
        assert.equal(onCpu.device, "cpu");
        const back = onCpu.to(device, { dtype: "float64" });
        assert.equal(back.dtype, "float64");
        assert.equal(back.device.startsWith(device), true);
        assert.deepEqual(back.toFlatArray(), [3, 5, 7]);
        assert.equal(randn([3], { device }).device.startsWith(device), true);
      }));
  }
  test("cuda tests", { skip: availableDevices().includes("cuda") ? false : "no CUDA device in this libtorch" }, () =>
    tidy(() => {
      const g = tensor([1, 2], { device: "cuda" });
      assert.equal(g.device, "cuda:0");
      assert.deepEqual(g.matmul(g).item(), 5);
    }));
});

describe("factory functions", () => {
  test("zeros, ones, full, empty, eye and the *Like variants", () =>
    tidy(() => {
      assert.deepEqual(zeros([2, 2]).toList(), [
        [0, 0],
        [0, 0],
      ]);
      assert.deepEqual(full([3], 0.25).toFlatArray(), [0.25, 0.25, 0.25]);
      assert.equal(full([2], 3).dtype, "float32", "an integral fill value still defaults to float32");
      assert.equal(full([2], true).dtype, "bool");
      assert.deepEqual(empty([3, 0, 2]).shape, [3, 0, 2]);
      assert.deepEqual(eye(3).toList(), [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ]);
      const base = tensor([1n, 2n]);
      assert.equal(zerosLike(base).dtype, "int64");
      assert.deepEqual(onesLike(base, { dtype: "float64" }).toTypedArray(), new Float64Array([1, 1]));
      assert.deepEqual(fullLike(base, 7).toFlatArray(), [7, 7]);
      assert.deepEqual(zeros([]).shape, []);
    }));

  test("arange: integers give int64, fractions float32; negative steps; end excluded", () =>
    tidy(() => {
      const a = arange(5);
      assert.equal(a.dtype, "int64");
      assert.deepEqual(a.toFlatArray(), [0, 1, 2, 3, 4]);
      assert.deepEqual(arange(2, 8, 3).toFlatArray(), [2, 5]);
      assert.deepEqual(arange(5, 0, -2).toFlatArray(), [5, 3, 1]);
      const f = arange(0, 1, 0.25);
      assert.equal(f.dtype, "float32");
      assert.deepEqual(f.toFlatArray(), [0, 0.25, 0.5, 0.75]);
      assert.equal(arange(3, { dtype: "float64" }).dtype, "float64");
      assert.throws(() => arange(0, 3, 0), /arange: step must be non-zero/);
    }));

  test("linspace includes both ends", () =>
    tidy(() => {
      assertClose(linspace(-1, 1, 5), [-1, -0.5, 0, 0.5, 1], { atol: 0, rtol: 0 });
      assert.deepEqual(linspace(0, 1, 1).toFlatArray(), [0]);
      assert.equal(linspace(0, 1, 3, { dtype: "float64" }).dtype, "float64");
    }));
});

describe("random draws", () => {
  test("manualSeed makes randn, rand, randint, randperm reproducible", () =>
    tidy(() => {
      const draw = () => [randn([4]), rand([4]), randint(0, 100, [4]), randperm(5)].map((t) => t.toFlatArray());
      manualSeed(42);
      const first = draw();
      manualSeed(42);
      assert.deepEqual(draw(), first);
      manualSeed(43);
      assert.notDeepEqual(draw()[0], first[0]);
    }));

  test("ranges and dtypes: rand in [0,1), randint in [low, high) as int64, randperm a permutation", () =>
    tidy(() => {
      manualSeed(1);
      const u = rand([2000]).toFlatArray();
      assert.ok(u.every((x) => x >= 0 && x < 1));
      const r = randint(-3, 4, [2000]);
      assert.equal(r.dtype, "int64");
      const rv = r.toFlatArray();
      assert.ok(rv.every((x) => x >= -3 && x < 4 && Number.isInteger(x)));
      assert.deepEqual([...new Set(rv)].sort((a, b) => a - b), [-3, -2, -1, 0, 1, 2, 3]);
      assert.deepEqual(randperm(6).toFlatArray().sort(), [0, 1, 2, 3, 4, 5]);
      // 20000 standard normals: the sample mean has std 0.007, the sample std ~0.005.
      const n = randn([20000], { dtype: "float64" });
      assert.equal(n.dtype, "float64");
      assert.ok(Math.abs(n.mean().itemNumber()) < 0.03);
      assert.ok(Math.abs(n.std().itemNumber() - 1) < 0.03);
      assert.equal(randn([2], { dtype: "bfloat16" }).dtype, "bfloat16");
    }));

  test("a Generator is independent of the global stream and resumable from its state", () =>
    tidy(() => {
      const g = new Generator(7);
      assert.equal(g.initialSeed, 7);
      manualSeed(0);
      const globalFirst = randn([3]).toFlatArray();
      manualSeed(0);
      const fromG = randn([3], { generator: g }).toFlatArray();
      assert.deepEqual(randn([3]).toFlatArray(), globalFirst, "drawing from g must not advance the global stream");
      assert.notDeepEqual(fromG, globalFirst);
      assert.deepEqual(randn([3], { generator: new Generator(7) }).toFlatArray(), fromG);

      const state = g.getState();
      assert.equal(state.dtype, "uint8");
      const next = rand([4], { generator: g }).toFlatArray();
      g.setState(state);
      assert.deepEqual(rand([4], { generator: g }).toFlatArray(), next);
    }));

  test("the global RNG state can be saved and restored", () =>
    tidy(() => {
      manualSeed(11);
      const s = getRngState();
      const a = randn([5]).toFlatArray();
      setRngState(s);
      assert.deepEqual(randn([5]).toFlatArray(), a);
    }));
});
