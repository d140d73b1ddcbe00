// safetensors against Python's `safetensors` (the Rust reference
// implementation, pinned in scripts/peers/requirements.txt):
//   - every file we write, in every dtype we have, with metadata, and a
//     sharded folder with its index, is read by safe_open with the same bytes;
//   - every file Python writes (every dtype torch stores in safetensors, NaN,
//     infinities, -0, subnormals, a sharded folder written by
//     huggingface_hub.save_torch_state_dict as save_pretrained does) is read by
//     ours with the same bytes, or, for the dtypes the engine lacks (U16, U32,
//     U64, F8_*), refused with an error naming the tensor and the dtype while
//     the header is still read.
// Comparison is of raw little-endian bytes: exact, no tolerance.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";

import { loadSafetensorsFolder, readSafetensorsHeader, SafetensorsFile, saveSafetensors, saveSafetensorsSharded } from "../../src/io/safetensors.js";
import { arange, type DType, manualSeed, randint, randn, tensor, type Tensor, tidy } from "../../src/torch/index.js";
import { peerSkip, runPython, scratch } from "./helpers/bridge.js";

interface Described {
  dtype: string;
  shape: number[];
  hex: string;
}
interface ReadBack {
  files: Record<string, { metadata: Record<string, string> | null; tensors: Record<string, Described> }>;
  folders: Record<string, { index_metadata: Record<string, unknown>; weight_map: Record<string, string>; shard_metadata: Record<string, Record<string, string>>; tensors: Record<string, Described>; data_bytes: number }>;
  written?: { file: string; folder: string; metadata: Record<string, string>; tensors: Record<string, Described>; sharded: Record<string, Described>; folder_files: string[] };
}

const hex = (t: Tensor) => Buffer.from(t.toBytes()).toString("hex");
const skip = peerSkip();
const work = scratch("vlm-peers-st-");
after(work.cleanup);

/** One tensor of every engine dtype, with special values in the float ones. */
function everyDtype(): Map<string, Tensor> {
  manualSeed(11);
  const specials = [0, -0, 1, -2.5, Infinity, -Infinity, NaN, 1e-40, 3.0e38];
  const floats = (dtype: DType, n: number, shape: number[]) => tensor([...specials.slice(0, n), ...randn([shape.reduce((a, b) => a * b) - n], { dtype: "float64" }).toFlatArray()], { dtype: "float64" }).to(dtype).reshape(shape);
  const m = new Map<string, Tensor>([
    ["f32", floats("float32", 9, [3, 5])],
    ["f64", floats("float64", 9, [12])],
    ["bf16", floats("bfloat16", 9, [2, 3, 4])],
    ["f16", floats("float16", 7, [4, 4])], // 3e38 and 1e-40 do not exist in float16
    ["i64", tensor([-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 2n ** 53n + 1n], { dtype: "int64" })],
    ["i32", randint(-(2 ** 31), 2 ** 31 - 1, [3, 3], { dtype: "int32" })],
    ["i16", tensor([-32768, 32767, 0, -1], { dtype: "int16" })],
    ["i8", tensor([-128, 127, 0, -1], { dtype: "int8" })],
    ["u8", arange(0, 256, 17, { dtype: "uint8" })],
    ["bool", tensor([[true, false, true], [false, false, true]], { dtype: "bool" })],
    ["scalar", tensor(3.25)],
    ["empty", randn([0, 3])],
    // A transposed (non-contiguous) view is written in logical order.
    ["model.layers.0.ünï", arange(6, { dtype: "float32" }).reshape(2, 3).t()],
  ]);
  return m;
}

describe("ours -> Python safetensors", { skip }, () => {
  test("a file with every dtype and metadata, and a 4-shard folder with its index, read back byte for byte", () =>
    tidy(() => {
      const tensors = everyDtype();
      const file = path.join(work.dir, "ours_all.safetensors");
      const metadata = { format: "pt", source: "vlm-grpo", "ünï": "✓ ½" };
      saveSafetensors(file, tensors, metadata);
      manualSeed(12);
      const shardedTensors = new Map<string, Tensor>([
        ...Array.from({ length: 5 }, (_, i) => [`model.layers.${i}.weight`, randn([16, 16])] as [string, Tensor]),
        ["model.norm.weight", randn([16], { dtype: "bfloat16" })],
        ["model.position_ids", arange(32, { dtype: "int64" })],
      ]);
      const folder = path.join(work.dir, "ours_sharded");
      const { files, totalSize } = saveSafetensorsSharded(folder, shardedTensors, { maxShardBytes: 2500 });
      assert.ok(files.length >= 4, `expected >= 4 files (shards + index), got ${files.join(", ")}`);

      const { response } = runPython<ReadBack>("safetensors_peer.py", { read_files: [file], read_folders: [folder] }, { dir: work.dir });
      const got = response.files[file];
      assert.deepEqual(got.metadata, metadata);
      assert.deepEqual(Object.keys(got.tensors).sort(), [...tensors.keys()].sort());
      for (const [name, t] of tensors) {
        const d = got.tensors[name];
        assert.equal(d.dtype, t.dtype, `${name}: dtype`);
        assert.deepEqual(d.shape, t.shape, `${name}: shape`);
        assert.equal(d.hex, hex(t.contiguous()), `${name}: bytes`);
      }

      const f = response.folders[folder];
      assert.equal(f.index_metadata.total_size, totalSize, "index total_size = data bytes, as transformers computes it");
      assert.equal(f.data_bytes, totalSize);
      for (const meta of Object.values(f.shard_metadata)) assert.deepEqual(meta, { format: "pt" });
      assert.deepEqual(Object.keys(f.tensors).sort(), [...shardedTensors.keys()].sort());
      for (const [name, t] of shardedTensors) {
        assert.equal(f.tensors[name].dtype, t.dtype, `${name}: dtype`);
        assert.equal(f.tensors[name].hex, hex(t), `${name}: bytes`);
      }
    }));
});

describe("Python safetensors -> ours", { skip }, () => {
  // The dtypes torch stores in safetensors that the engine has no type for.
  const UNLOADABLE: Record<string, string> = { uint16: "U16", uint32: "U32", uint64: "U64", float8_e4m3fn: "F8_E4M3", float8_e5m2: "F8_E5M2" };
  let cached: NonNullable<ReadBack["written"]> | undefined;
  const written = () => (cached ??= runPython<ReadBack>("safetensors_peer.py", { write_dir: path.join(work.dir, "py") }, { dir: work.dir }).response.written!);

  test("every dtype: same bytes, dtype and shape; engine-less dtypes refused by name; metadata read", () =>
    tidy(() => {
      const w = written();
      const header = readSafetensorsHeader(w.file);
      assert.deepEqual(header.metadata, w.metadata);
      const f = SafetensorsFile.open(w.file);
      assert.deepEqual(f.names.sort(), Object.keys(w.tensors).sort());
      let loaded = 0;
      for (const [name, d] of Object.entries(w.tensors)) {
        assert.deepEqual(f.entry(name).shape, d.shape, `${name}: shape in the header`);
        const st = UNLOADABLE[d.dtype];
        if (st) {
          assert.equal(f.entry(name).dtype, st);
          assert.throws(() => f.get(name), new RegExp(`tensor '${name}': dtype ${st} cannot be loaded`));
          continue;
        }
        const t = f.get(name);
        assert.equal(t.dtype, d.dtype, `${name}: dtype`);
        assert.deepEqual(t.shape, d.shape, `${name}: shape`);
        assert.equal(hex(t), d.hex, `${name}: bytes`);
        loaded++;
      }
      assert.equal(loaded, Object.keys(w.tensors).length - Object.keys(UNLOADABLE).length);
    }));

  test("a sharded folder written by huggingface_hub.save_torch_state_dict loads with the same bytes", () =>
    tidy(() => {
      const w = written();
      assert.ok(w.folder_files.filter((n) => n.endsWith(".safetensors")).length > 1, `expected several shards, got ${w.folder_files.join(", ")}`);
      assert.ok(fs.existsSync(path.join(w.folder, "model.safetensors.index.json")));
      const m = loadSafetensorsFolder(w.folder);
      assert.deepEqual([...m.keys()].sort(), Object.keys(w.sharded).sort());
      for (const [name, d] of Object.entries(w.sharded)) {
        const t = m.get(name)!;
        assert.equal(t.dtype, d.dtype, `${name}: dtype`);
        assert.deepEqual(t.shape, d.shape, `${name}: shape`);
        assert.equal(hex(t), d.hex, `${name}: bytes`);
      }
    }));
});
