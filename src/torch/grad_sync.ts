// Bucketed gradient all-reduce for data-parallel training, the scheme of
// PyTorch's DistributedDataParallel: parameters are grouped into buckets of
// at most `bucketBytes` (in reverse order, the order in which backward
// produces their gradients), each bucket's gradients are flattened into one
// buffer and reduced by a single collective, and the result is copied back.
// One collective per bucket instead of one per tensor: a LoRA model has
// hundreds of small adapter tensors, and per-call latency dominates them.
//
// Overlap: the reductions are asynchronous (ProcessGroup.allReduceAsync runs
// them on the backend's threads), so bucket k travels while the JS thread
// flattens bucket k+1; the copies back start once every bucket is in flight.
// Overlap with the backward itself (DDP's autograd hooks) is not done: the
// backward is one synchronous libtorch call here, and with gradient
// accumulation the reduction happens once per optimizer step, after the last
// micro-batch, anyway.
//
// Gradients that a rank lacks (a parameter its batch did not reach) count as
// zeros; a parameter no rank has a gradient for keeps `grad === null`, as it
// would in one process (so the optimizer skips it there too).
import { ELEMENT_SIZE } from "./dtype.js";
import { type AllReduceWork, type ProcessGroup, type ReduceOp } from "./distributed.js";
import { noGrad } from "./autograd.js";
import { keep, tidy } from "./scope.js";
import { cat } from "./ops/shape.js";
import { tensor, zerosLike } from "./creation.js";
import type { Tensor } from "./tensor.js";

/** PyTorch DDP's default bucket cap (25 MiB). */
export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;

/**
 * Indices of `params` per bucket: reverse parameter order, a new bucket when
 * the next tensor would pass `bucketBytes` or has another dtype or device.
 * A tensor larger than the cap gets a bucket of its own.
 */
export function planBuckets(params: readonly Tensor[], bucketBytes: number): number[][] {
  if (!(bucketBytes > 0)) throw new Error(`planBuckets: bucketBytes must be positive, got ${bucketBytes}`);
  const buckets: number[][] = [];
  let current: number[] = [];
  let bytes = 0;
  let kind = "";
  for (let i = params.length - 1; i >= 0; i--) {
    const p = params[i];
    const size = p.numel * ELEMENT_SIZE[p.dtype];
    const k = `${p.dtype}@${p.device}`;
    if (current.length && (k !== kind || bytes + size > bucketBytes)) {
      buckets.push(current);
      current = [];
      bytes = 0;
    }
    current.push(i);
    bytes += size;
    kind = k;
  }
  if (current.length) buckets.push(current);
  return buckets;
}

/** What one sync() did. */
export interface GradSyncStats {
  /** Gradient bytes reduced by this rank (sum over buckets). */
  bytes: number;
  buckets: number;
  /** Wall time of the whole sync, in seconds. */
  seconds: number;
  /** Per bucket: seconds from its launch until its wait returned. */
  bucketSeconds: number[];
  /** Seconds the JS thread spent blocked in waits (communication not hidden behind flattening). */
  waitSeconds: number;
}

/** All-reduces the gradients of a fixed list of parameters in flattened buckets. */
export class GradientSynchronizer {
  readonly buckets: number[][];
  readonly bucketBytes: number[];

  constructor(
    private readonly pg: ProcessGroup,
    private readonly params: readonly Tensor[],
    bucketBytes: number = DEFAULT_BUCKET_BYTES,
    private readonly op: Extract<ReduceOp, "sum" | "avg"> = "sum",
  ) {
    this.buckets = planBuckets(params, bucketBytes);
    this.bucketBytes = this.buckets.map((b) => b.reduce((s, i) => s + params[i].numel * ELEMENT_SIZE[params[i].dtype], 0));
  }

  /**
   * Reduces every parameter's gradient across ranks, in place. Every rank
   * must call it at the same point with the same parameter list. Throws (from
   * the backend) when a peer failed or the collective timed out.
   */
  sync(): GradSyncStats {
    const t0 = performance.now();
    const present = this.presence();
    let waitSeconds = 0;
    const inFlight: { flat: Tensor; work: AllReduceWork; members: number[]; started: number }[] = [];
    const bucketSeconds: number[] = [];
    let bytes = 0;
    try {
      noGrad(() => {
        for (const bucket of this.buckets) {
          // Flattening this bucket overlaps the reduction of the previous one.
          const members = bucket.filter((i) => present[i]);
          if (members.length === 0) continue;
          const flat = keep(tidy(() => cat(members.map((i) => this.gradOrZeros(i).reshape(-1)))));
          bytes += members.reduce((s, i) => s + this.params[i].numel * ELEMENT_SIZE[this.params[i].dtype], 0);
          inFlight.push({ flat, work: this.pg.allReduceAsync(flat, this.op), members, started: performance.now() });
        }
        for (const f of inFlight) {
          const w0 = performance.now();
          f.work.wait();
          const w1 = performance.now();
          waitSeconds += (w1 - w0) / 1000;
          bucketSeconds.push((w1 - f.started) / 1000);
          tidy(() => {
            let offset = 0;
            for (const i of f.members) {
              const p = this.params[i];
              const g = p.grad!;
              g.copy_(f.flat.narrow(0, offset, p.numel).view(p.shape));
              offset += p.numel;
            }
          });
        }
      });
    } finally {
      for (const f of inFlight) f.flat.dispose();
    }
    return { bytes, buckets: inFlight.length, seconds: (performance.now() - t0) / 1000, bucketSeconds, waitSeconds };
  }

  /** Which parameters have a gradient on at least one rank (one small MAX all-reduce). */
  private presence(): boolean[] {
    return tidy(() => {
      const t = tensor(this.params.map((p) => (p.grad === null ? 0 : 1)), { dtype: "float32" });
      this.pg.allReduce(t, "max");
      return t.toFlatArray().map((v) => v > 0);
    });
  }

  /** The parameter's gradient, creating a zero one when this rank has none. */
  private gradOrZeros(i: number): Tensor {
    const p = this.params[i];
    const g = p.grad;
    if (g !== null) return g;
    const z = zerosLike(p);
    p.grad = z; // the parameter holds its own reference; the handle goes with the scope
    return z;
  }
}
