// safetensors round trips: every dtype bit for bit, metadata, the file
// layout (alignment, deterministic order), load options and lazy reading.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";

import {
  loadSafetensors,
  readSafetensorsHeader,
  SafetensorsFile,
  saveSafetensors,
} from "../../src/io/safetensors.js";
import { arange, type DType, dispose, ELEMENT_SIZE, fromBytes, liveTensors, randn, type Tensor, tensor, tidy } from "../../src/torch/index.js";
import { tempDir } from "./helpers.js";

const dir = tempDir("st-roundtrip");

const ALL_DTYPES: DType[] = ["float32", "float64", "bfloat16", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"];

/** A tensor of random bit patterns (NaN payloads, infinities, extremes included); bool gets 0/1 bytes. */
function randomTensor(dtype: DType, shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(randomBytes(n * ELEMENT_SIZE[dtype]));
  if (dtype === "bool") bytes.forEach((b, i) => (bytes[i] = b & 1));
  return fromBytes(bytes, dtype, shape);
}

const bytesOf = (t: Tensor) => Buffer.from(t.toBytes());

describe("safetensors round trip", () => {
  test("every dtype, including 0-d and empty tensors, comes back bit for bit with its shape", () =>
    tidy(() => {
      const tensors = new Map<string, Tensor>();
      for (const d of ALL_DTYPES) {
        tensors.set(`${d}.matrix`, randomTensor(d, [3, 5]));
        tensors.set(`${d}.scalar`, randomTensor(d, []));
        tensors.set(`${d}.empty`, randomTensor(d, [0, 4]));
      }
      const file = path.join(dir, "all.safetensors");
      saveSafetensors(file, tensors);
      const back = loadSafetensors(file);
      assert.deepEqual([...back.keys()].sort(), [...tensors.keys()].sort());
      for (const [name, t] of tensors) {
        const b = back.get(name)!;
        assert.equal(b.dtype, t.dtype, `${name}: dtype`);
        assert.deepEqual(b.shape, t.shape, `${name}: shape`);
        assert.ok(bytesOf(b).equals(bytesOf(t)), `${name}: bytes differ`);
      }
    }));

  test("metadata round trips; a file without metadata reports null", () =>
    tidy(() => {
      const meta = { format: "pt", note: "ünïcode ✓", empty: "" };
      const file = path.join(dir, "meta.safetensors");
      saveSafetensors(file, { w: arange(4) }, meta);
      assert.deepEqual(readSafetensorsHeader(file).metadata, meta);
      saveSafetensors(file, { w: arange(4) });
      assert.equal(readSafetensorsHeader(file).metadata, null);
      // A key that is special in JS objects is kept as plain data.
      saveSafetensors(file, { w: arange(4) }, JSON.parse('{"__proto__": "x"}'));
      assert.equal(Object.getOwnPropertyDescriptor(readSafetensorsHeader(file).metadata, "__proto__")?.value, "x");
    }));

  test("non-contiguous, requires-grad and unicode-named tensors are saved as their row-major values", () =>
    tidy(() => {
      const base = arange(6, { dtype: "float32" }).reshape([2, 3]);
      const w = randn([3, 2]).requiresGrad_(true);
      const file = path.join(dir, "views.safetensors");
      saveSafetensors(file, { "t.ränspose": base.t(), w });
      const back = loadSafetensors(file);
      assert.deepEqual(back.get("t.ränspose")!.toList(), [
        [0, 3],
        [1, 4],
        [2, 5],
      ]);
      assert.ok(bytesOf(back.get("w")!).equals(bytesOf(w.detach())));
      assert.equal(back.get("w")!.requiresGrad, false);
    }));

  test("layout: data starts at a multiple of 8, tensors sorted by element size then name, each aligned to its size", () =>
    tidy(() => {
      const file = path.join(dir, "layout.safetensors");
      const tensors = { b: randomTensor("uint8", [3]), a: randomTensor("float16", [3]), c: randomTensor("int64", [1]), d: randomTensor("float32", [5]), e: randomTensor("float32", [1]) };
      saveSafetensors(file, tensors, { format: "pt" });
      const h = readSafetensorsHeader(file);
      assert.equal(h.dataStart % 8, 0);
      assert.deepEqual([...h.entries.keys()], ["c", "d", "e", "a", "b"]);
      for (const e of h.entries.values()) {
        const size = e.byteLength / e.shape.reduce((x, y) => x * y, 1);
        assert.equal((e.fileOffset - h.dataStart) % size, 0, `${e.name} misaligned`);
      }
      // Header padding is spaces (the format allows trailing whitespace in the JSON).
      const raw = fs.readFileSync(file);
      const text = raw.subarray(8, h.dataStart).toString("utf8");
      assert.match(text, /^\{.*\} *$/);
    }));

  test("the same tensors in a different insertion order give the identical file", () =>
    tidy(() => {
      const x = randomTensor("float32", [4]);
      const y = randomTensor("bfloat16", [2, 2]);
      const z = randomTensor("int32", [3]);
      const f1 = path.join(dir, "order1.safetensors");
      const f2 = path.join(dir, "order2.safetensors");
      saveSafetensors(f1, new Map([["x", x], ["10", z], ["2", y]]), { a: "1" });
      saveSafetensors(f2, new Map([["2", y], ["x", x], ["10", z]]), { a: "1" });
      assert.ok(fs.readFileSync(f1).equals(fs.readFileSync(f2)));
    }));
});

describe("safetensors load options", () => {
  const file = path.join(dir, "opts.safetensors");
  const make = () => ({ "a.weight": randn([4, 3]), "b.weight": randn([2]), ids: arange(5, { dtype: "int64" }), mask: tensor([true, false]) });

  test("names as a list (in that order) or as a predicate", () =>
    tidy(() => {
      saveSafetensors(file, make());
      assert.deepEqual([...loadSafetensors(file, { names: ["ids", "a.weight"] }).keys()], ["ids", "a.weight"]);
      assert.deepEqual([...loadSafetensors(file, { names: (n) => n.endsWith(".weight") }).keys()].sort(), ["a.weight", "b.weight"]);
    }));

  test("an unknown name is an error that names it and the file", () =>
    tidy(() => {
      saveSafetensors(file, make());
      assert.throws(() => loadSafetensors(file, { names: ["a.weight", "nope"] }), (e: Error) => e.message.includes("'nope'") && e.message.includes(file));
    }));

  test("dtype casts floating-point tensors only; integer and bool tensors keep their dtype", () =>
    tidy(() => {
      const src = make();
      saveSafetensors(file, src);
      const back = loadSafetensors(file, { dtype: "bfloat16" });
      assert.equal(back.get("a.weight")!.dtype, "bfloat16");
      assert.equal(back.get("ids")!.dtype, "int64");
      assert.equal(back.get("mask")!.dtype, "bool");
      // The cast is libtorch's round-to-nearest-even, the same as casting the original.
      assert.ok(bytesOf(back.get("a.weight")!).equals(bytesOf(src["a.weight"].to("bfloat16"))));
      assert.throws(() => loadSafetensors(file, { dtype: "int32" }), /not floating point/);
    }));

  test("lazy reading holds one tensor at a time and a failing load leaks nothing", () => {
    tidy(() => saveSafetensors(file, make()));
    const live0 = liveTensors();
    const f = SafetensorsFile.open(file);
    assert.equal(liveTensors(), live0, "opening reads no tensor");
    let seen = 0;
    for (const [, t] of f.tensors()) {
      assert.equal(liveTensors(), live0 + 1);
      t.dispose();
      seen++;
    }
    assert.equal(seen, 4);
    assert.deepEqual(f.entry("a.weight").shape, [4, 3]);
    assert.throws(() => f.load({ names: ["a.weight", "missing"] }), /'missing'/);
    assert.equal(liveTensors(), live0);
  });

  test("reading after the file was replaced is an error, not wrong data", () =>
    tidy(() => {
      const g = path.join(dir, "replaced.safetensors");
      saveSafetensors(g, { a: randn([8]) });
      const f = SafetensorsFile.open(g);
      saveSafetensors(g, { pad: randn([3]), a: randn([8]) });
      assert.throws(() => f.get("a"), /changed since its header was read/);
    }));
});

describe("saveSafetensors argument checks", () => {
  test("bad names, non-tensors, disposed tensors and non-string metadata are refused, naming the key", () =>
    tidy(() => {
      const file = path.join(dir, "bad.safetensors");
      assert.throws(() => saveSafetensors(file, { __metadata__: randn([1]) }), /reserved/);
      assert.throws(() => saveSafetensors(file, { "": randn([1]) }), /non-empty/);
      assert.throws(() => saveSafetensors(file, { w: [1, 2] as unknown as Tensor }), /tensor 'w': expected a Tensor/);
      const t = randn([2]);
      dispose(t);
      assert.throws(() => saveSafetensors(file, { gone: t }), /tensor 'gone' was disposed/);
      assert.throws(() => saveSafetensors(file, { w: randn([1]) }, { n: 3 as unknown as string }), /metadata 'n' must be a string/);
      assert.equal(fs.existsSync(file), false);
    }));
});
