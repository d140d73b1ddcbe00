// The --nproc launcher (src/cli/launch.ts) with stand-in workers: torchrun's
// variables, output prefixed by rank, a failing worker's exit code, SIGTERM
// to the others and SIGKILL after the grace period; and the per-rank device
// and thread choices of src/cli/distributed.ts.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { UsageError } from "../../src/cli/args.js";
import { rankDevice, threadsPerWorker } from "../../src/cli/distributed.js";
import { extractNproc, launchWorkers, workerEnv } from "../../src/cli/launch.js";

const script = fileURLToPath(new URL("./launch_worker.js", import.meta.url));

class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

async function launch(mode: string, nproc: number, graceMs = 5000) {
  const stdout = new Capture();
  const stderr = new Capture();
  const t0 = performance.now();
  const code = await launchWorkers("sft", nproc, [mode], { script, graceMs, stdout, stderr });
  return { code, out: stdout.text, err: stderr.text, seconds: (performance.now() - t0) / 1000 };
}

describe("--nproc launcher", () => {
  test("extractNproc takes the flag out and checks it", () => {
    assert.deepEqual(extractNproc(["--config", "a.yaml", "--nproc", "2", "--x.y", "1"]), { nproc: 2, argv: ["--config", "a.yaml", "--x.y", "1"] });
    assert.deepEqual(extractNproc(["--nproc=3"]), { nproc: 3, argv: [] });
    assert.equal(extractNproc(["--config", "a.yaml"]), null);
    assert.throws(() => extractNproc(["--nproc", "0"]), /--nproc: expected a positive integer, got '0'/);
    assert.throws(() => extractNproc(["--nproc", "two"]), UsageError);
    assert.throws(() => extractNproc(["--nproc"]), /--nproc needs a value/);
    assert.throws(() => extractNproc(["--nproc", "2", "--nproc=2"]), /given twice/);
  });

  test("workers get torchrun's variables; every line comes back prefixed with its rank", async () => {
    const r = await launch("ok", 2);
    assert.equal(r.code, 0, r.err);
    for (const rank of [0, 1]) {
      assert.ok(r.out.includes(`[rank${rank}]: vars RANK=${rank} LOCAL_RANK=${rank} WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 GROUP_RANK=0 ROLE_RANK=${rank} MASTER_ADDR=127.0.0.1 port=true\n`), r.out);
      assert.ok(r.err.includes(`[rank${rank}]: to stderr from ${rank}\n`), r.err);
    }
    const env = workerEnv(1, 4, 29500, {});
    assert.equal(env.MASTER_PORT, "29500");
    assert.equal(env.ROLE_WORLD_SIZE, "4");
  });

  test("a failing worker stops the others (SIGTERM) and its exit code is the launcher's", async () => {
    const r = await launch("fail1", 3);
    assert.equal(r.code, 7);
    assert.match(r.err, /vlm-grpo: rank 1 exited with code 7; stopping the other ranks/);
    assert.match(r.out, /\[rank0\]: got SIGTERM/);
    assert.match(r.out, /\[rank2\]: got SIGTERM/);
  });

  test("a worker that ignores SIGTERM is killed after the grace period", async () => {
    const r = await launch("stubborn", 2, 800);
    assert.equal(r.code, 7);
    assert.match(r.out, /\[rank0\]: ignoring SIGTERM/);
    assert.match(r.err, /rank 0 did not stop within 0.8 s; killing it/);
    assert.ok(r.seconds < 10, `${r.seconds} s`);
  });

  test("refuses commands that do not run data-parallel, and nesting under torchrun", async () => {
    await assert.rejects(launchWorkers("demo", 2, [], { script }), /--nproc works with sft, grpo, eval, predict, not 'demo'/);
    const saved = process.env.WORLD_SIZE;
    process.env.WORLD_SIZE = "2";
    try {
      await assert.rejects(launchWorkers("sft", 2, [], { script }), /--nproc inside a multi-process run/);
    } finally {
      if (saved === undefined) delete process.env.WORLD_SIZE;
      else process.env.WORLD_SIZE = saved;
    }
  });
});

describe("per-rank device and threads", () => {
  test("CUDA ranks bind to cuda:LOCAL_RANK; CPU stays; cores are split among a machine's workers", () => {
    assert.equal(rankDevice("cuda", 3), "cuda:3");
    assert.equal(rankDevice("cuda:0", 1), "cuda:1");
    assert.equal(rankDevice("cpu", 1), "cpu");
    assert.equal(threadsPerWorker(16, 4), 4);
    assert.equal(threadsPerWorker(2, 2), 1);
    assert.equal(threadsPerWorker(2, 8), 1);
    assert.equal(threadsPerWorker(6, 4), 1);
  });
});
