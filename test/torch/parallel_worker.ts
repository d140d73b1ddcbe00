// One rank of the two-process tests of src/torch/parallel.ts and grad_sync.ts
// (test/torch/parallel.test.ts). Reads torchrun's variables; the mode (argv[2])
// picks the scenario; prints one JSON line of results on stdout.
//   collectives   async all-reduce, bucketed gradient sync, gathers, broadcasts, store
//   report        rank 1 reports a failure and exits; rank 0's next collective names it
//   vanish        rank 1 exits without a word (as if killed); rank 0's census names it
import { DataParallel, GradientSynchronizer, PeerFailureError, arange, keep, liveTensors, ones, tensor, tidy, zeros } from "../../src/torch/index.js";

async function collectives(dp: DataParallel): Promise<Record<string, unknown>> {
  const pg = dp.pg!;
  const r = dp.rank;
  const before = liveTensors();
  const out = tidy(() => {
    // Several async all-reduces in flight at once, waited in order.
    const a = tensor([r + 1, 10 * (r + 1)]);
    const b = tensor([2 * r, 1]);
    const base = arange(6, { dtype: "float32" }).reshape([2, 3]).mul(r + 1);
    const wa = pg.allReduceAsync(a, "sum");
    const wb = pg.allReduceAsync(b, "avg");
    const wc = pg.allReduceAsync(base.transpose(0, 1), "sum"); // non-contiguous: written back on wait
    wa.wait();
    wb.wait();
    wc.wait();
    let twice = "";
    try {
      wa.wait();
    } catch (e) {
      twice = (e as Error).message;
    }
    // Gradient sync: 4 parameters, a 40-byte cap (the two 8-float tensors alone, the others together).
    const params = [zeros([3]), zeros([2, 4]), zeros([8]), zeros([2])].map((t) => keep(t.requiresGrad_(true)));
    tidy(() => {
      // rank 0 has grads for params 0,1,2; rank 1 for 1,2 only; param 3 has none anywhere.
      const loss = (r === 0 ? params[0].mul(tensor([1, 2, 3])).sum() : tensor(0))
        .add(params[1].mul(arange(8, { dtype: "float32" }).reshape([2, 4]).add(r)).sum())
        .add(params[2].mul(r + 1).sum());
      loss.backward();
    });
    const sync = new GradientSynchronizer(pg, params, 40);
    const stats = sync.sync();
    const grads = params.map((p) => (p.grad === null ? null : p.grad.toFlatArray()));
    for (const p of params) p.dispose();
    return {
      sum: a.toFlatArray(),
      avg: b.toFlatArray(),
      viaView: base.toFlatArray(),
      twice,
      buckets: sync.buckets,
      bucketBytes: sync.bucketBytes,
      stats: { bytes: stats.bytes, buckets: stats.buckets, perBucket: stats.bucketSeconds.length },
      grads,
    };
  });
  const leaked = liveTensors() - before;
  const bytes = dp.allGatherBytes(new Uint8Array(r === 0 ? [] : [1, 2, 3, 250]));
  const json = dp.allGatherJson({ rank: r, text: "é".repeat(r + 1), x: 0.1 + r });
  const bjson = dp.broadcastJson(r === 1 ? { from: 1, list: [1, 2] } : undefined, 1);
  const t = tidy(() => {
    const x = r === 0 ? ones([2, 2]).mul(7) : zeros([2, 2]);
    dp.broadcastTensors([x], 0);
    return x.toFlatArray();
  });
  const numbers = dp.allReduceNumbers([r + 0.5, -r, 1e300], "sum");
  const maxes = dp.allReduceNumbers([r, -r], "max");
  const any = [dp.anyTrue(r === 1), dp.anyTrue(false)];
  // A NaN on one rank reaches every rank through a sum (how the trainers stop together on a NaN).
  const nan = dp.allReduceNumbers([r === 1 ? NaN : 1, 2]);
  pg.storeSet(`k${r}`, `v${r}`);
  dp.barrier();
  const store = [pg.storeGet("k0"), pg.storeGet("k1"), pg.storeGet("missing"), pg.storeAdd("ctr", 1) >= 1];
  return { ...out, leaked, bytes: bytes.map((b) => [...b]), json, bjson, bcast: t, numbers, maxes, any, nan, store };
}

async function main(): Promise<void> {
  const mode = process.argv[2] ?? "collectives";
  const dp = await DataParallel.init({ timeoutMs: Number(process.env.TEST_TIMEOUT_MS ?? 20_000), censusMs: 1500 });
  let result: Record<string, unknown> = { rank: dp.rank, worldSize: dp.worldSize, localWorldSize: dp.localWorldSize };
  if (mode === "collectives") {
    result = { ...result, ...(await collectives(dp)) };
  } else {
    dp.barrier();
    if (dp.rank === 1) {
      if (mode === "report") dp.reportFailure("Error: injected failure");
      process.exit(3);
    }
    const t0 = performance.now();
    try {
      dp.allReduceNumbers([1]);
      result.error = "none";
    } catch (e) {
      result.error = (e as Error).message;
      result.peerFailure = e instanceof PeerFailureError;
    }
    result.seconds = (performance.now() - t0) / 1000;
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exit(1);
  }
  dp.barrier();
  dp.destroy();
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((e: unknown) => {
  process.stderr.write(`parallel_worker: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
