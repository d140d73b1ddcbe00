// The data-parallel layer over c10d: async all-reduce, bucketed gradient
// sync, gathers of variable-length data, broadcasts, the rendezvous store,
// and failure reports that name the failed rank. Two real processes on
// loopback (parallel_worker.js); exact values (small integers sum exactly).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { DataParallel, isDistributedAvailable, isMultiProcessEnv, planBuckets, shardRange, tensor, zeros } from "../../src/torch/index.js";
import { freeLoopbackPort } from "../../src/cli/launch.js";

const skip = isDistributedAvailable("gloo") ? false : "the addon was built without c10d/Gloo";
const workerPath = fileURLToPath(new URL("./parallel_worker.js", import.meta.url));

const freePort = freeLoopbackPort;

interface RankResult {
  code: number | null;
  out: Record<string, unknown> | null;
  stderr: string;
}

function runRank(mode: string, rank: number, port: number): Promise<RankResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [workerPath, mode], {
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: "2", LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), VLM_NUM_THREADS: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split("\n").pop();
      resolve({ code, out: line ? (JSON.parse(line) as Record<string, unknown>) : null, stderr });
    });
  });
}

describe("data parallel (gloo, 2 processes)", { skip }, () => {
  test("async all-reduce, bucketed gradient sync, gathers, broadcasts and the store give exact values", async () => {
    const port = await freePort();
    const res = await Promise.all([runRank("collectives", 0, port), runRank("collectives", 1, port)]);
    for (const [rank, r] of res.entries()) {
      assert.equal(r.code, 0, `rank ${rank}: ${r.stderr}`);
      const o = r.out!;
      assert.equal(o.rank, rank);
      assert.equal(o.localWorldSize, 2);
      assert.deepEqual(o.sum, [3, 30]);
      assert.deepEqual(o.avg, [1, 1]);
      assert.deepEqual(o.viaView, [0, 3, 6, 9, 12, 15], "written back through the transposed view on wait()");
      assert.match(o.twice as string, /already waited/);
      // Reverse order, 40-byte cap: [p3 (8 B) + p2 (32 B)], [p1 (32 B)], [p0 (12 B)].
      assert.deepEqual(o.buckets, [[3, 2], [1], [0]]);
      assert.deepEqual(o.bucketBytes, [40, 32, 12]);
      assert.deepEqual(o.stats, { bytes: 76, buckets: 3, perBucket: 3 }, "p3 has no gradient anywhere: not sent");
      assert.deepEqual(o.grads, [
        [1, 2, 3], // rank 0 only; rank 1 contributes zeros
        [1, 3, 5, 7, 9, 11, 13, 15], // (arange + 0) + (arange + 1)
        [3, 3, 3, 3, 3, 3, 3, 3], // 1 + 2
        null, // no rank had a gradient: stays null, as in one process
      ]);
      assert.equal(o.leaked, 0);
      assert.deepEqual(o.bytes, [[], [1, 2, 3, 250]], "variable lengths, an empty one included");
      assert.deepEqual(o.json, [{ rank: 0, text: "é", x: 0.1 }, { rank: 1, text: "éé", x: 1.1 }]);
      assert.deepEqual(o.bjson, { from: 1, list: [1, 2] });
      assert.deepEqual(o.bcast, [7, 7, 7, 7]);
      assert.deepEqual(o.numbers, [2, -1, 2e300], "float64: 1e300 + 1e300 does not overflow");
      assert.deepEqual(o.maxes, [1, 0]);
      assert.deepEqual(o.any, [true, false]);
      assert.deepEqual(o.nan, [null, 4], "NaN (JSON null) on both ranks");
      assert.deepEqual(o.store, ["v0", "v1", null, true]);
    }
  });

  test("a rank that reports its failure and exits is named by the others' next collective", async () => {
    const port = await freePort();
    const [r0, r1] = await Promise.all([runRank("report", 0, port), runRank("report", 1, port)]);
    assert.equal(r1.code, 3);
    assert.equal(r0.out!.peerFailure, true, String(r0.out!.error));
    assert.match(r0.out!.error as string, /^rank 0 of 2: stopping because rank 1 failed: Error: injected failure/);
    assert.ok((r0.out!.seconds as number) < 10, `took ${r0.out!.seconds} s`);
  });

  test("a rank that vanishes without a word is named by the census", async () => {
    const port = await freePort();
    const [r0, r1] = await Promise.all([runRank("vanish", 0, port), runRank("vanish", 1, port)]);
    assert.equal(r1.code, 3);
    assert.equal(r0.out!.peerFailure, true, String(r0.out!.error));
    assert.match(r0.out!.error as string, /^rank 0 of 2: all-reduce \(sum\) of 1 numbers failed: rank 1 did not answer within 1500 ms \(killed, crashed or hung/);
    assert.ok((r0.out!.seconds as number) < 10, `took ${r0.out!.seconds} s`);
  });
});

describe("data parallel helpers (one process)", () => {
  test("shardRange splits n items into near-equal contiguous parts that cover each item once", () => {
    for (const [n, w] of [[10, 3], [2, 4], [0, 2], [8, 2], [7, 7]]) {
      const parts = Array.from({ length: w }, (_, r) => shardRange(n, w, r));
      assert.equal(parts[0][0], 0);
      assert.equal(parts[w - 1][1], n);
      for (let r = 1; r < w; r++) assert.equal(parts[r][0], parts[r - 1][1], "contiguous");
      const sizes = parts.map(([a, b]) => b - a);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${n}/${w}: ${sizes}`);
    }
    assert.deepEqual(shardRange(10, 3, 0), [0, 4]);
    assert.deepEqual(shardRange(10, 3, 2), [7, 10]);
    assert.throws(() => shardRange(4, 2, 2), /rank 2 is not in \[0, 2\)/);
  });

  test("planBuckets: reverse order, the cap, a new bucket per dtype, oversized tensors alone", () => {
    const ps = [zeros([4]), zeros([4]), zeros([100]), zeros([2], { dtype: "float64" }), zeros([1])];
    assert.deepEqual(planBuckets(ps, 32), [[4], [3], [2], [1, 0]]);
    assert.deepEqual(planBuckets(ps, 1 << 20), [[4], [3], [2, 1, 0]]);
    assert.throws(() => planBuckets(ps, 0), /bucketBytes must be positive/);
    for (const p of ps) p.dispose();
  });

  test("a one-process context: collectives are identities, no group is made", async () => {
    assert.equal(isMultiProcessEnv({ WORLD_SIZE: "1" }), false);
    assert.equal(isMultiProcessEnv({}), false);
    assert.equal(isMultiProcessEnv({ WORLD_SIZE: "2" }), true);
    const dp = await DataParallel.init({ timeoutMs: 1000, env: { WORLD_SIZE: "1", RANK: "0" } });
    assert.equal(dp.enabled, false);
    assert.equal(dp.isMain, true);
    assert.deepEqual(dp.shard([1, 2, 3]), [1, 2, 3]);
    assert.deepEqual(dp.allReduceNumbers([1, 2]), [1, 2]);
    assert.deepEqual(dp.allGatherJson({ a: 1 }), [{ a: 1 }]);
    assert.equal(dp.broadcastJson(5), 5);
    assert.equal(dp.anyTrue(true), true);
    assert.equal(dp.gradientSynchronizer([]), null);
    const t = tensor([1]);
    dp.broadcastTensors([t]);
    assert.deepEqual(t.toFlatArray(), [1]);
    t.dispose();
    await assert.rejects(DataParallel.init({ timeoutMs: 1000, backend: "nccl", device: "cpu", env: { WORLD_SIZE: "2", RANK: "0", MASTER_ADDR: "127.0.0.1", MASTER_PORT: "1" } }), /backend is nccl but the device is cpu/);
  });
});
