// c10d process groups over Gloo: two real processes on loopback (each runs
// distributed_worker.js with torchrun's variables), plus the single-process
// checks: settings validation, a one-rank group, and the rendezvous timeout.
// Exact values: every input is a small integer, so float32 sums are exact.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { freeLoopbackPort } from "../../src/cli/launch.js";

import {
  initProcessGroup,
  isDistributedAvailable,
  liveTensors,
  resolveProcessGroupSettings,
  tensor,
  tidy,
} from "../../src/torch/index.js";

const skip = isDistributedAvailable("gloo") ? false : "the addon was built without c10d/Gloo";
const workerPath = fileURLToPath(new URL("./distributed_worker.js", import.meta.url));

const freePort = freeLoopbackPort;

interface RankResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runRank(rank: number, worldSize: number, port: number): Promise<RankResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [workerPath], {
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(worldSize), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), VLM_NUM_THREADS: "1" },
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
      resolve({ code, stdout, stderr });
    });
  });
}

describe("distributed (gloo, 2 processes on loopback)", { skip }, () => {
  test("allReduce, broadcast, allGather and barrier give the exact values on both ranks", async () => {
    const port = await freePort();
    const results = await Promise.all([runRank(0, 2, port), runRank(1, 2, port)]);
    const outs = results.map((res, rank) => {
      assert.equal(res.code, 0, `rank ${rank} exited with ${res.code}:\n${res.stderr}`);
      const line = res.stdout.trim().split("\n").pop()!;
      return JSON.parse(line) as Record<string, unknown>;
    });
    for (const [rank, o] of outs.entries()) {
      assert.equal(o.rank, rank);
      assert.equal(o.worldSize, 2);
      assert.equal(o.backend, "gloo");
      assert.equal(o.localRank, rank, "LOCAL_RANK unset: localRank defaults to rank");
      assert.deepEqual(o.sum, [3, 6, 20]); // [1,2,10] + [2,4,10]
      assert.deepEqual(o.avg, [1, 1.5]); // ([0,1] + [2,2]) / 2
      assert.deepEqual(o.max, [1, 0]);
      assert.deepEqual(o.min, [0, -1]);
      assert.deepEqual(o.product, [6, 12]); // [2,3] * [3,4]
      assert.deepEqual(o.sumInt64, [11, -(2 ** 41)]);
      assert.deepEqual(o.viaView, [0, 3, 6, 9, 12, 15], "arange(6) * 1 + arange(6) * 2, written back through a transposed view");
      assert.deepEqual(o.bcast, [7, 8, 9], "rank 1's values");
      assert.deepEqual(o.gatherShapes, [[1, 2], [1, 2]]);
      assert.deepEqual(o.gatherStacked, [[[0, 0]], [[1, 10]]]);
      assert.equal(o.leaked, 0, "tidy released every tensor, gathered ones included");
      assert.match(o.afterDestroy as string, /barrier: the process group was destroyed/);
    }
  });
});

describe("distributed settings", () => {
  const env = { RANK: "1", WORLD_SIZE: "4", LOCAL_RANK: "0", MASTER_ADDR: "10.0.0.5", MASTER_PORT: "29500" };

  test("torchrun's variables fill what the options leave out; options win", () => {
    const fromEnv = resolveProcessGroupSettings({ env, backend: "gloo" });
    assert.deepEqual(fromEnv, { backend: "gloo", rank: 1, worldSize: 4, localRank: 0, masterAddr: "10.0.0.5", masterPort: 29500, timeoutMs: 1_800_000, hostStore: false, storePrefix: "" });
    assert.equal(resolveProcessGroupSettings({ env: { ...env, RANK: "0" } }).hostStore, true, "rank 0 hosts the store");
    // torchrun 2.x: its agent serves the store; every rank is a client, keys under the attempt's prefix.
    const agent = resolveProcessGroupSettings({ env: { ...env, RANK: "0", TORCHELASTIC_USE_AGENT_STORE: "True", TORCHELASTIC_RESTART_COUNT: "2" } });
    assert.equal(agent.hostStore, false);
    assert.equal(agent.storePrefix, "/vlm_grpo/attempt_2");
    const mixed = resolveProcessGroupSettings({ env, rank: 3, masterPort: 1234, timeoutMs: 5 });
    assert.equal(mixed.rank, 3);
    assert.equal(mixed.masterPort, 1234);
    assert.equal(mixed.timeoutMs, 5);
    assert.equal(mixed.worldSize, 4);
  });

  test("bad or missing settings are named", () => {
    const bad = (opts: Parameters<typeof resolveProcessGroupSettings>[0], re: RegExp) => assert.throws(() => resolveProcessGroupSettings(opts), re);
    bad({ env: { ...env, WORLD_SIZE: "two" } }, /WORLD_SIZE='two' is not an integer >= 1/);
    bad({ env: { ...env, WORLD_SIZE: "0" } }, /WORLD_SIZE='0' is not an integer >= 1/);
    bad({ env, worldSize: 0 }, /options.worldSize must be an integer >= 1, got 0/);
    bad({ env, rank: 4 }, /rank 4 is out of range for world size 4 \(ranks are 0..3\)/);
    bad({ env, rank: -1 }, /options.rank must be an integer >= 0, got -1/);
    bad({ env: { ...env, RANK: undefined } }, /rank is not set: pass options.rank or set RANK/);
    bad({ env: { ...env, MASTER_ADDR: "" } }, /masterAddr is not set: pass options.masterAddr or set MASTER_ADDR/);
    bad({ env: { ...env, MASTER_PORT: "70000" } }, /masterPort must be in \[1, 65535\], got 70000/);
    bad({ env, timeoutMs: 0 }, /timeoutMs must be a positive integer/);
    bad({ env, backend: "mpi" as "gloo" }, /unknown backend 'mpi'/);
  });

  test("initProcessGroup rejects (not throws) on bad settings, and on a back-end that was not built", async () => {
    await assert.rejects(initProcessGroup({ env: {}, rank: 2, worldSize: 2, masterAddr: "127.0.0.1", masterPort: 1 }), /rank 2 is out of range for world size 2/);
    if (!isDistributedAvailable("nccl")) {
      await assert.rejects(initProcessGroup({ env, backend: "nccl" }), /backend 'nccl' is not available: the addon was built without NCCL/);
    }
    if (!isDistributedAvailable("gloo")) {
      await assert.rejects(initProcessGroup({ env, backend: "gloo" }), /backend 'gloo' is not available/);
    }
  });
});

describe("distributed (gloo, one process)", { skip }, () => {
  test("a one-rank group: collectives are identities (avg divides by 1); errors are named", async () => {
    const pg = await initProcessGroup({ env: {}, rank: 0, worldSize: 1, masterAddr: "127.0.0.1", masterPort: await freePort(), timeoutMs: 10_000 });
    const before = liveTensors();
    tidy(() => {
      assert.deepEqual(pg.allReduce(tensor([1.5, -2]), "avg").toFlatArray(), [1.5, -2]);
      const g = pg.allGather(tensor([4, 5]));
      assert.equal(g.length, 1);
      assert.deepEqual(g[0].toFlatArray(), [4, 5]);
      assert.throws(() => pg.broadcast(tensor([1]), 1), /broadcast: src must be a rank in \[0, 1\), got 1/);
      assert.throws(() => pg.allReduce(tensor([1]), "mean" as "avg"), /pgAllReduce: unknown op 'mean'/);
      assert.throws(() => pg.allReduce(tensor([1, 2], { dtype: "int64" }), "avg"), /op 'avg' needs a floating-point tensor, got Long/);
      const t = tensor([1]);
      t.dispose();
      assert.throws(() => pg.allReduce(t), /released tensor/);
      pg.barrier();
    });
    assert.equal(liveTensors(), before);
    pg.destroy();
    pg.destroy(); // idempotent
    assert.equal(pg.isDestroyed, true);
    assert.throws(() => pg.allGather(tensor([1])), /allGather: the process group was destroyed/);
  });

  test("a rendezvous that misses a rank rejects after timeoutMs, naming the address", async () => {
    const port = await freePort();
    const t0 = performance.now();
    await assert.rejects(
      initProcessGroup({ env: {}, rank: 0, worldSize: 2, masterAddr: "127.0.0.1", masterPort: port, timeoutMs: 1500 }),
      new RegExp(`rank 0 of 2 \\(gloo\\): only 1 of 2 ranks joined the rendezvous at 127\\.0\\.0\\.1:${port} within 1500 ms`),
    );
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 1400 && elapsed < 10_000, `rejected after ${elapsed.toFixed(0)} ms`);
  });

  test("a rank that cannot reach the store rejects, naming the address", async () => {
    const port = await freePort();
    await assert.rejects(
      initProcessGroup({ env: {}, rank: 1, worldSize: 2, masterAddr: "127.0.0.1", masterPort: port, timeoutMs: 1000 }),
      new RegExp(`rank 1 of 2 \\(gloo\\) could not reach the TCPStore at 127\\.0\\.0\\.1:${port} within 1000 ms`),
    );
  });
});
