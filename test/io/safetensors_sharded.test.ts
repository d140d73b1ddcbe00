// Sharded checkpoint folders: HF naming and index, single file when it
// fits, stale files removed, lazy reading, and index/shard disagreements.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";

import {
  loadSafetensorsFolder,
  planShards,
  readSafetensorsHeader,
  SafetensorsFolder,
  saveSafetensors,
  saveSafetensorsSharded,
} from "../../src/io/safetensors.js";
import { arange, liveTensors, randn, type Tensor, tidy, zeros } from "../../src/torch/index.js";
import { listDir, tempDir } from "./helpers.js";

const root = tempDir("st-sharded");
let n = 0;
const freshDir = () => path.join(root, `ckpt${n++}`);

/** Ten float32 tensors of 100 bytes (25 elements) each, plus an int64 buffer of 40 bytes. */
function model(): Map<string, Tensor> {
  const m = new Map<string, Tensor>();
  for (let i = 0; i < 10; i++) m.set(`layers.${i}.weight`, randn([5, 5]));
  m.set("position_ids", arange(5, { dtype: "int64" }));
  return m;
}

function assertSameTensors(a: Map<string, Tensor>, b: Map<string, Tensor>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, t] of a) {
    assert.equal(b.get(k)!.dtype, t.dtype, k);
    assert.ok(Buffer.from(b.get(k)!.toBytes()).equals(Buffer.from(t.toBytes())), `${k}: bytes differ`);
  }
}

describe("sharded save and load", () => {
  test("a small maxShardBytes gives HF-named shards and an index; loading returns the same tensors", () =>
    tidy(() => {
      const dir = freshDir();
      const m = model();
      // 250 bytes: two 100-byte tensors per shard -> 5 shards of weights, the 40-byte buffer joins the last.
      const { files, totalSize } = saveSafetensorsSharded(dir, m, { maxShardBytes: 250 });
      assert.equal(totalSize, 10 * 100 + 40);
      const shards = ["00001", "00002", "00003", "00004", "00005"].map((i) => `model-${i}-of-00005.safetensors`);
      assert.deepEqual(files, [...shards, "model.safetensors.index.json"]);
      assert.deepEqual(listDir(dir), [...shards, "model.safetensors.index.json"].sort());

      const index = JSON.parse(fs.readFileSync(path.join(dir, "model.safetensors.index.json"), "utf8"));
      assert.deepEqual(index.metadata, { total_size: 1040 });
      assert.equal(index.weight_map["layers.0.weight"], shards[0]);
      assert.equal(index.weight_map["layers.9.weight"], shards[4]);
      assert.equal(index.weight_map.position_ids, shards[4]);
      // Keys sorted, as transformers writes them (sort_keys=True).
      const keys = Object.keys(index.weight_map);
      assert.deepEqual(keys, [...keys].sort());
      // Every shard carries {"format": "pt"}, without which transformers refuses the checkpoint.
      for (const s of shards) assert.deepEqual(readSafetensorsHeader(path.join(dir, s)).metadata, { format: "pt" });

      assertSameTensors(m, loadSafetensorsFolder(dir));
    }));

  test("tensors that fit in one shard give model.safetensors and no index", () =>
    tidy(() => {
      const dir = freshDir();
      const m = model();
      const { files } = saveSafetensorsSharded(dir, m);
      assert.deepEqual(files, ["model.safetensors"]);
      assert.deepEqual(listDir(dir), ["model.safetensors"]);
      assertSameTensors(m, loadSafetensorsFolder(dir));
    }));

  test("a tensor larger than the limit gets a shard to itself", () =>
    tidy(() => {
      const big = zeros([100]); // 400 bytes
      const plan = planShards(
        [
          ["a", zeros([10])],
          ["big", big],
          ["b", zeros([10])],
        ],
        100,
      );
      assert.deepEqual(
        plan.map((s) => s.map(([k]) => k)),
        [["big"], ["a", "b"]],
      );
    }));

  test("re-saving with a different layout removes the old layout's files (and keeps unrelated files)", () =>
    tidy(() => {
      const dir = freshDir();
      const m = model();
      saveSafetensorsSharded(dir, m, { maxShardBytes: 250 });
      fs.writeFileSync(path.join(dir, "config.json"), "{}");
      saveSafetensorsSharded(dir, m, { maxShardBytes: 600 });
      assert.deepEqual(listDir(dir), ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]);
      saveSafetensorsSharded(dir, m);
      assert.deepEqual(listDir(dir), ["config.json", "model.safetensors"]);
      assertSameTensors(m, loadSafetensorsFolder(dir));
    }));

  test("a custom prefix (e.g. a PEFT adapter) and metadata", () =>
    tidy(() => {
      const dir = freshDir();
      saveSafetensorsSharded(dir, { "lora_A.weight": randn([2, 3]) }, { prefix: "adapter_model", metadata: { format: "pt", peft: "1" } });
      assert.deepEqual(listDir(dir), ["adapter_model.safetensors"]);
      const folder = SafetensorsFolder.open(dir, { prefix: "adapter_model" });
      assert.deepEqual(folder.metadata, { format: "pt", peft: "1" });
      assert.throws(() => SafetensorsFolder.open(dir), /found neither model\.safetensors nor model\.safetensors\.index\.json/);
      assert.throws(() => saveSafetensorsSharded(dir, {}, { prefix: "../x" }), /plain file name stem/);
    }));

  test("a folder is read lazily, one tensor at a time, with names and dtype options", () => {
    const dir = freshDir();
    tidy(() => saveSafetensorsSharded(dir, model(), { maxShardBytes: 250 }));
    const live0 = liveTensors();
    const folder = SafetensorsFolder.open(dir);
    assert.equal(folder.files.length, 5);
    assert.equal(folder.names.length, 11);
    let count = 0;
    for (const [name, t] of folder.tensors({ names: (k) => k.startsWith("layers."), dtype: "float16" })) {
      assert.equal(liveTensors(), live0 + 1, name);
      assert.equal(t.dtype, "float16");
      t.dispose();
      count++;
    }
    assert.equal(count, 10);
    assert.equal(folder.fileOf("position_ids").entry("position_ids").dtype, "I64");
    assert.throws(() => folder.get("nope"), /no tensor named 'nope'/);
    assert.equal(liveTensors(), live0);
  });

  test("an argument error stops the save before any file is written", () =>
    tidy(() => {
      const dir = freshDir();
      const bad = new Map<string, Tensor>([...model(), ["__metadata__", randn([1])]]);
      assert.throws(() => saveSafetensorsSharded(dir, bad, { maxShardBytes: 250 }), /reserved/);
      assert.equal(fs.existsSync(dir) ? fs.readdirSync(dir).length : 0, 0);
    }));
});

describe("index errors", () => {
  /** A valid 3-shard folder to break. */
  function sharded(): string {
    const dir = freshDir();
    tidy(() => saveSafetensorsSharded(dir, model(), { maxShardBytes: 450 }));
    return dir;
  }
  const indexOf = (dir: string) => path.join(dir, "model.safetensors.index.json");
  const editIndex = (dir: string, edit: (ix: { weight_map: Record<string, string> }) => void) => {
    const ix = JSON.parse(fs.readFileSync(indexOf(dir), "utf8"));
    edit(ix);
    fs.writeFileSync(indexOf(dir), JSON.stringify(ix));
  };
  const assertBad = (dir: string, ...parts: string[]) =>
    assert.throws(
      () => loadSafetensorsFolder(dir),
      (e: Error) => {
        for (const p of parts) assert.ok(e.message.includes(p), `message should include ${JSON.stringify(p)}: ${e.message}`);
        return true;
      },
    );

  test("a missing shard file", () => {
    const dir = sharded();
    fs.rmSync(path.join(dir, "model-00002-of-00003.safetensors"));
    assertBad(dir, indexOf(dir), "shard model-00002-of-00003.safetensors is missing", "layers.4.weight");
  });

  test("a name mapped to a shard that lacks it", () => {
    const dir = sharded();
    editIndex(dir, (ix) => (ix.weight_map["ghost.weight"] = "model-00001-of-00003.safetensors"));
    assertBad(dir, indexOf(dir), "tensor 'ghost.weight' is mapped to model-00001-of-00003.safetensors", "has no such tensor");
  });

  test("a shard holding a tensor the index does not list, or lists under another shard", () => {
    const dir = sharded();
    editIndex(dir, (ix) => delete ix.weight_map["layers.0.weight"]);
    assertBad(dir, "holds tensor 'layers.0.weight', which the index does not list");
    const dir2 = sharded();
    editIndex(dir2, (ix) => (ix.weight_map["layers.0.weight"] = "model-00002-of-00003.safetensors"));
    assertBad(dir2, "model-00001-of-00003.safetensors holds tensor 'layers.0.weight', which the index maps to model-00002-of-00003.safetensors");
  });

  test("an index that is not JSON, lacks weight_map, or points outside the folder", () => {
    const dir = sharded();
    fs.writeFileSync(indexOf(dir), "{ nope");
    assertBad(dir, indexOf(dir), "not valid JSON");
    fs.writeFileSync(indexOf(dir), JSON.stringify({ metadata: {} }));
    assertBad(dir, '"weight_map" must be an object');
    fs.writeFileSync(indexOf(dir), JSON.stringify({ weight_map: { w: "../model.safetensors" } }));
    assertBad(dir, "tensor 'w'", "shard must be a file name in the same folder");
  });

  test("a corrupt shard reports the shard's own path", () => {
    const dir = sharded();
    const shard = path.join(dir, "model-00003-of-00003.safetensors");
    fs.writeFileSync(shard, fs.readFileSync(shard).subarray(0, 50));
    assertBad(dir, shard);
  });

  test("a single-file folder is preferred over an index, as transformers does", () =>
    tidy(() => {
      const dir = sharded();
      saveSafetensors(path.join(dir, "model.safetensors"), { only: zeros([1]) });
      assert.deepEqual([...loadSafetensorsFolder(dir).keys()], ["only"]);
    }));
});
