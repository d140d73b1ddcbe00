// One rank of the two-process c10d test (test/torch/distributed.test.ts).
// Reads torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT),
// runs each collective on rank-dependent tensors, and prints one JSON line
// of results on stdout for the parent to check.
import { arange, initProcessGroup, liveTensors, stack, tensor, tidy, zeros } from "../../src/torch/index.js";

async function main(): Promise<void> {
  const pg = await initProcessGroup({ timeoutMs: 20_000 });
  const r = pg.rank;
  const liveBefore = liveTensors();
  const out = tidy(() => {
    const sum = pg.allReduce(tensor([r + 1, 2 * (r + 1), 10]), "sum").toFlatArray();
    const avg = pg.allReduce(tensor([2 * r, 1 + r]), "avg").toFlatArray();
    const max = pg.allReduce(tensor([r, -r]), "max").toFlatArray();
    const min = pg.allReduce(tensor([r, -r]), "min").toFlatArray();
    const product = pg.allReduce(tensor([r + 2, r + 3]), "product").toFlatArray();
    const sumInt64 = pg.allReduce(tensor([r + 5, -(2 ** 40)], { dtype: "int64" }), "sum").toFlatArray();
    // A non-contiguous view: reduced on a contiguous copy, written back through the view.
    const base = arange(6, { dtype: "float32" }).reshape([2, 3]).mul(r + 1);
    pg.allReduce(base.transpose(0, 1), "sum");
    const viaView = base.toFlatArray();
    const bcast = pg.broadcast(r === 1 ? tensor([7, 8, 9]) : zeros([3]), 1).toFlatArray();
    const gathered = pg.allGather(tensor([[r, 10 * r]]));
    const gatherShapes = gathered.map((t) => t.shape);
    const gatherStacked = stack(gathered).toList();
    pg.barrier();
    return { sum, avg, max, min, product, sumInt64, viaView, bcast, gatherShapes, gatherStacked };
  });
  const leaked = liveTensors() - liveBefore;
  pg.barrier();
  pg.destroy();
  let afterDestroy = "";
  try {
    pg.barrier();
  } catch (e) {
    afterDestroy = (e as Error).message;
  }
  const info = { rank: r, worldSize: pg.worldSize, backend: pg.backend, localRank: pg.localRank };
  process.stdout.write(JSON.stringify({ ...info, ...out, leaked, afterDestroy }) + "\n");
}

main().catch((e: unknown) => {
  process.stderr.write(`distributed_worker: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
