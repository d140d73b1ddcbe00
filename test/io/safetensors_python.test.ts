// Compatibility with Python: files written by Python (checked-in fixtures
// from scripts/fixtures/make_safetensors_fixture.py) load with known values,
// and files we write are read by an independent parser in Python
// (struct + json + torch.frombuffer), skipped when no torch-enabled Python.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { loadSafetensors, loadSafetensorsFolder, readSafetensorsHeader, saveSafetensors, saveSafetensorsSharded } from "../../src/io/safetensors.js";
import { arange, fromBytes, randn, tensor, type Tensor, tidy } from "../../src/torch/index.js";
import { tempDir } from "./helpers.js";

// dist/test/io -> repository root (fixtures are not copied by tsc).
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const FIXTURES = path.join(ROOT, "test/fixtures");

describe("fixtures written by Python", () => {
  test("every dtype loads with the values Python wrote, bit for bit", () =>
    tidy(() => {
      const file = path.join(FIXTURES, "python_dtypes.safetensors");
      const h = readSafetensorsHeader(file);
      assert.deepEqual(h.metadata, { format: "pt", source: "make_safetensors_fixture.py" });
      const m = loadSafetensors(file);
      assert.equal(m.size, 12);
      const check = (name: string, dtype: string, shape: number[], values: unknown[]) => {
        const t = m.get(name)!;
        assert.equal(t.dtype, dtype, `${name}: dtype`);
        assert.deepEqual(t.shape, shape, `${name}: shape`);
        assert.deepEqual(Array.from(t.toTypedArray() as ArrayLike<unknown>), values, `${name}: values`);
      };
      // All values are exactly representable in their dtype, so equality is exact.
      check("f32", "float32", [2, 3], [-1, -0.5, 0, 0.5, 1, 1.5]);
      check("f64", "float64", [3], [0.1, -2, 1e300]);
      check("bf16", "bfloat16", [2, 2], [1, -2.5, 3.140625, 65280]);
      check("f16", "float16", [4], [0.5, -1, 65504, 6.103515625e-5]);
      check("i64", "int64", [3], [-(2n ** 62n), 0n, 2n ** 53n + 1n]);
      check("i32", "int32", [2, 2], [-2147483648, 2147483647, 0, 7]);
      check("i16", "int16", [2], [-32768, 32767]);
      check("model.layers.0.ünï", "int8", [2], [-128, 127]);
      check("u8", "uint8", [5], [0, 1, 127, 128, 255]);
      check("flags", "bool", [3], [1, 0, 1]);
      check("scalar", "float32", [], [42]);
      check("empty", "float32", [0, 3], []);
    }));

  test("a sharded folder (index written as transformers does) loads", () =>
    tidy(() => {
      const m = loadSafetensorsFolder(path.join(FIXTURES, "python_sharded"));
      assert.deepEqual([...m.keys()].sort(), ["embed.weight", "lm_head.weight", "norm.weight", "position_ids"]);
      assert.deepEqual(m.get("embed.weight")!.toList(), [
        [0, 1, 2],
        [3, 4, 5],
      ]);
      assert.deepEqual(m.get("lm_head.weight")!.toFlatArray(), [-0, -1, -2, -3, -4, -5]);
      assert.equal(m.get("norm.weight")!.dtype, "bfloat16");
      assert.deepEqual(m.get("norm.weight")!.toFlatArray(), [1, 1, 1]);
      assert.deepEqual(m.get("position_ids")!.toFlatArray(), [0, 1, 2, 3]);
    }));
});

// ---- our files read by Python -------------------------------------------------

const PYTHON = process.env.PYTHON ?? "/usr/bin/python3";
// find_spec answers without importing torch (which takes most of a second).
const hasTorch = spawnSync(PYTHON, ["-c", "import importlib.util as u, sys; sys.exit(0 if u.find_spec('torch') else 1)"], { stdio: "ignore" }).status === 0;

// An independent reader written from the format specification: it checks
// the layout itself and returns, per tensor, dtype, shape, the raw bytes (hex)
// and the values as torch sees them (strings, so int64 survives JSON).
const PY_READER = String.raw`
import json, struct, sys, torch
DT = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
      "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
out = {}
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    assert (8 + n) % 8 == 0, "header not padded to 8 bytes"
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    buf = data[8 + n:]
    spans = sorted(tuple(v["data_offsets"]) for v in header.values())
    pos = 0
    for b, e in spans:
        assert b == pos, "tensors do not tile the data"
        pos = e
    assert pos == len(buf), "trailing bytes"
    tensors = {}
    for name, v in header.items():
        b, e = v["data_offsets"]
        dt = DT[v["dtype"]]
        t = torch.frombuffer(bytearray(buf[b:e]), dtype=dt) if e > b else torch.empty(0, dtype=dt)
        t = t.reshape(v["shape"])
        vals = t.double().flatten().tolist() if t.is_floating_point() else t.flatten().tolist()
        tensors[name] = {"dtype": v["dtype"], "shape": list(t.shape), "hex": buf[b:e].hex(), "values": [repr(x) for x in vals]}
    out[path] = {"metadata": meta, "tensors": tensors}
print(json.dumps(out))
`;

interface PyTensor {
  dtype: string;
  shape: number[];
  hex: string;
  values: string[];
}
type PyFile = { metadata: Record<string, string> | null; tensors: Record<string, PyTensor> };

function readWithPython(files: string[]): Record<string, PyFile> {
  const r = spawnSync(PYTHON, ["-c", PY_READER, ...files], { encoding: "utf8" });
  assert.equal(r.status, 0, `python reader failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Compares Python's view of a tensor with ours: bytes exactly, and values as numbers. */
function assertPythonSees(py: PyTensor, t: Tensor, name: string): void {
  assert.deepEqual(py.shape, t.shape, `${name}: shape`);
  assert.equal(py.hex, Buffer.from(t.toBytes()).toString("hex"), `${name}: bytes`);
  const ours = Array.from(t.toTypedArray() as ArrayLike<number | bigint>);
  const theirs = py.values.map((s) => (typeof ours[0] === "bigint" ? BigInt(s) : s === "True" ? 1 : s === "False" ? 0 : Number(s.replace("inf", "Infinity"))));
  assert.deepEqual(theirs, ours, `${name}: values`);
}

describe("files we write, read by Python", { skip: hasTorch ? false : `no torch in ${PYTHON} (set PYTHON)` }, () => {
  const dir = tempDir("st-python");

  test("every dtype: Python's torch.frombuffer sees our bytes, shapes and values", () =>
    tidy(() => {
      const tensors: Record<string, Tensor> = {
        "f32.w": randn([3, 4]),
        f64: randn([5], { dtype: "float64" }),
        bf16: randn([2, 3]).to("bfloat16"),
        f16: tensor([0.5, -1, 65504, -0]).to("float16"),
        i64: tensor([-(2n ** 62n), 0n, 2n ** 53n + 1n]),
        i32: tensor([-2147483648, 2147483647, 5], { dtype: "int32" }),
        i16: tensor([-32768, 32767], { dtype: "int16" }),
        i8: tensor([-128, 127], { dtype: "int8" }),
        u8: fromBytes(new Uint8Array([0, 1, 255]), "uint8", [3]),
        "bööl": tensor([true, false, true]),
        scalar: tensor(3.5),
        empty: arange(0).reshape([0, 2]),
        "0": tensor([1, 2]),
      };
      const file = path.join(dir, "ours.safetensors");
      saveSafetensors(file, tensors, { format: "pt", step: "12" });
      const py = readWithPython([file])[file];
      assert.deepEqual(py.metadata, { format: "pt", step: "12" });
      assert.deepEqual(Object.keys(py.tensors).sort(), Object.keys(tensors).sort());
      for (const [name, t] of Object.entries(tensors)) {
        assert.equal(py.tensors[name].dtype, readSafetensorsHeader(file).entries.get(name)!.dtype, name);
        assertPythonSees(py.tensors[name], t, name);
      }
    }));

  test("sharded output: every shard parses in Python and the index covers them exactly", () =>
    tidy(() => {
      const out = path.join(dir, "sharded");
      const tensors = new Map<string, Tensor>();
      for (let i = 0; i < 6; i++) tensors.set(`layers.${i}.weight`, randn([4, 4]));
      const { files } = saveSafetensorsSharded(out, tensors, { maxShardBytes: 128 });
      const shards = files.filter((f) => f.endsWith(".safetensors")).map((f) => path.join(out, f));
      assert.equal(shards.length, 3);
      const py = readWithPython(shards);
      const seen = new Map<string, string>();
      for (const s of shards) for (const name of Object.keys(py[s].tensors)) seen.set(name, path.basename(s));
      const index = JSON.parse(fs.readFileSync(path.join(out, "model.safetensors.index.json"), "utf8"));
      assert.deepEqual(index.weight_map, Object.fromEntries([...seen].sort()));
      assert.equal(index.metadata.total_size, 6 * 64);
      for (const s of shards) for (const [name, t] of Object.entries(py[s].tensors)) assertPythonSees(t, tensors.get(name)!, name);
    }));
});
