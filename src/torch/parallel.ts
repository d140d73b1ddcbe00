// The data-parallel context the trainers and the evaluation share: this
// process's rank among `worldSize` workers and the collectives they need on
// plain values (numbers, JSON, byte strings), over one c10d process group.
// A one-process context (DataParallel.single()) has no group and makes every
// collective an identity, so callers need no separate code path.
//
// Failures: when a collective throws on this rank (a peer exited, was killed,
// or hung past the timeout), the error is rewritten to say which rank
// failed. A rank that fails on its own first writes its message into the
// rendezvous store (reportFailure); its peers read it there. A rank that
// could not report (killed, hung) is named by a census: the survivors each
// set an "alive" key and wait briefly for the others; whoever stays silent
// is the culprit. When the store itself is gone, its host is: rank 0, or
// under torchrun 2.x the torchrun agent (which outlives any one worker).
import { type DistributedBackend, defaultBackend, initProcessGroup, type ProcessGroup, resolveProcessGroupSettings } from "./distributed.js";
import { fromBytes, tensor, zeros } from "./creation.js";
import { GradientSynchronizer, DEFAULT_BUCKET_BYTES } from "./grad_sync.js";
import { tidy } from "./scope.js";
import { cat } from "./ops/shape.js";
import type { Tensor } from "./tensor.js";

/** Thrown on every surviving rank when a collective failed because a peer did. */
export class PeerFailureError extends Error {}

const FAILED_KEY = "vlm_grpo/failed";
const FAILED_COUNT_KEY = "vlm_grpo/failed_count";
const ALIVE_PREFIX = "vlm_grpo/alive/";

export interface DataParallelInitOptions {
  /** "auto": nccl for a CUDA device (when compiled in), gloo otherwise. Default "auto". */
  backend?: "auto" | DistributedBackend;
  /** The run's device (picks the backend under "auto"). Default "cpu". */
  device?: string;
  /** Limit for the rendezvous and for each collective, in ms. */
  timeoutMs: number;
  /** How long survivors wait for each other when naming a failed rank. Default min(5000, timeoutMs). */
  censusMs?: number;
  /** Where torchrun's variables are read from. Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Contiguous, near-equal part `rank` of `n` items: [start, end). The first n % world ranks get one more. */
export function shardRange(n: number, worldSize: number, rank: number): [number, number] {
  if (!Number.isInteger(n) || n < 0) throw new Error(`shardRange: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(worldSize) || worldSize < 1 || !Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new Error(`shardRange: rank ${rank} is not in [0, ${worldSize})`);
  }
  const base = Math.floor(n / worldSize);
  const extra = n % worldSize;
  const start = rank * base + Math.min(rank, extra);
  return [start, start + base + (rank < extra ? 1 : 0)];
}

/** Whether the environment describes a multi-process run (WORLD_SIZE > 1, as torchrun and --nproc set it). */
export function isMultiProcessEnv(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  const w = env.WORLD_SIZE?.trim();
  return w !== undefined && w !== "" && Number(w) > 1;
}

export class DataParallel {
  /** @internal use DataParallel.single() or DataParallel.init(). */
  constructor(
    readonly pg: ProcessGroup | null,
    readonly rank: number,
    readonly worldSize: number,
    /** Rank on this machine: picks the CUDA device. */
    readonly localRank: number,
    /** Workers on this machine: share its cores. */
    readonly localWorldSize: number,
    private readonly censusMs: number,
    /** Who serves the rendezvous store (for messages). */
    private readonly storeHost = "rank 0",
  ) {}

  /** One process: no group, every collective is an identity. */
  static single(): DataParallel {
    return new DataParallel(null, 0, 1, 0, 1, 0);
  }

  /**
   * Joins the workers described by torchrun's variables (RANK, WORLD_SIZE,
   * LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT); a one-process
   * context when WORLD_SIZE is unset or 1.
   */
  static async init(opts: DataParallelInitOptions): Promise<DataParallel> {
    const env = opts.env ?? process.env;
    if (!isMultiProcessEnv(env)) return DataParallel.single();
    const device = opts.device ?? "cpu";
    const backend = !opts.backend || opts.backend === "auto" ? defaultBackend(device) : opts.backend;
    if (backend === "nccl" && !device.startsWith("cuda")) throw new Error(`distributed.backend is nccl but the device is ${device}: NCCL reduces CUDA tensors only (use gloo on CPU)`);
    const settings = resolveProcessGroupSettings({ backend, timeoutMs: opts.timeoutMs, env });
    const lws = env.LOCAL_WORLD_SIZE?.trim();
    const localWorldSize = lws && /^\d+$/.test(lws) && Number(lws) >= 1 ? Number(lws) : 1;
    const pg = await initProcessGroup({ ...settings, env });
    const storeHost = env.TORCHELASTIC_USE_AGENT_STORE === "True" ? "the torchrun agent" : "rank 0";
    return new DataParallel(pg, pg.rank, pg.worldSize, pg.localRank, localWorldSize, opts.censusMs ?? Math.min(5000, opts.timeoutMs), storeHost);
  }

  /** Rank 0, the one that writes logs, checkpoints and reports. */
  get isMain(): boolean {
    return this.rank === 0;
  }

  /** More than one process. */
  get enabled(): boolean {
    return this.pg !== null && this.worldSize > 1;
  }

  /** This rank's contiguous part of `items` (near-equal parts, in rank order). */
  shard<T>(items: readonly T[]): T[] {
    const [a, b] = shardRange(items.length, this.worldSize, this.rank);
    return items.slice(a, b);
  }

  /**
   * Runs a collective, turning a failure into a PeerFailureError that names
   * the rank at fault (see the file header). Every collective of this class
   * goes through it; use it for ProcessGroup calls made elsewhere.
   */
  collective<T>(what: string, fn: (pg: ProcessGroup) => T): T {
    if (!this.pg) throw new Error(`${what}: no process group (one-process run)`);
    try {
      return fn(this.pg);
    } catch (e) {
      if (e instanceof PeerFailureError) throw e;
      throw new PeerFailureError(this.explain(what, e as Error));
    }
  }

  /** Element-wise reduction of numbers across ranks (float64). */
  allReduceNumbers(values: readonly number[], op: "sum" | "max" | "min" = "sum"): number[] {
    if (!this.enabled || values.length === 0) return [...values];
    return tidy(() => {
      const t = tensor([...values], { dtype: "float64" });
      this.collective(`all-reduce (${op}) of ${values.length} numbers`, (pg) => pg.allReduce(t, op));
      return t.toFlatArray();
    });
  }

  /** True on every rank when `flag` is true on any. */
  anyTrue(flag: boolean): boolean {
    return this.allReduceNumbers([flag ? 1 : 0], "max")[0] > 0;
  }

  /** Every rank's bytes, in rank order (any lengths: lengths first, then padded byte tensors). */
  allGatherBytes(bytes: Uint8Array): Uint8Array[] {
    if (!this.enabled) return [bytes.slice()];
    return tidy(() => {
      const lengths = this.collective("all-gather of lengths", (pg) => pg.allGather(tensor([bytes.length], { dtype: "int64" }))).map((t) => t.itemNumber());
      const max = Math.max(1, ...lengths);
      const padded = cat([bytes.length ? fromBytes(bytes, "uint8", [bytes.length]) : zeros([0], { dtype: "uint8" }), zeros([max - bytes.length], { dtype: "uint8" })]);
      const parts = this.collective(`all-gather of ${max} bytes per rank`, (pg) => pg.allGather(padded));
      return parts.map((t, r) => t.toBytes().slice(0, lengths[r]));
    });
  }

  /** Every rank's value (JSON-serializable), in rank order. */
  allGatherJson<T>(value: T): T[] {
    if (!this.enabled) return [JSON.parse(JSON.stringify(value)) as T];
    const enc = new TextEncoder().encode(JSON.stringify(value));
    const dec = new TextDecoder();
    return this.allGatherBytes(enc).map((b) => JSON.parse(dec.decode(b)) as T);
  }

  /** Rank `src`'s value on every rank (others pass anything, e.g. undefined). */
  broadcastJson<T>(value: T | undefined, src = 0): T {
    if (!this.enabled) return value as T;
    const enc = new TextEncoder().encode(this.rank === src ? JSON.stringify(value ?? null) : "");
    return tidy(() => {
      const len = tensor([enc.length], { dtype: "int64" });
      this.collective("broadcast of a length", (pg) => pg.broadcast(len, src));
      const n = len.itemNumber();
      const buf = this.rank === src ? fromBytes(enc, "uint8", [n]) : zeros([n], { dtype: "uint8" });
      this.collective(`broadcast of ${n} bytes`, (pg) => pg.broadcast(buf, src));
      return JSON.parse(new TextDecoder().decode(buf.toBytes())) as T;
    });
  }

  /** Overwrites each tensor with rank `src`'s values, in place (same shapes and dtypes on every rank). */
  broadcastTensors(tensors: readonly Tensor[], src = 0): void {
    if (!this.enabled) return;
    for (const t of tensors) this.collective(`broadcast of a ${t.dtype} tensor [${t.shape.join(", ")}]`, (pg) => pg.broadcast(t, src));
  }

  /** Returns when every rank got here. */
  barrier(what = "barrier"): void {
    if (this.enabled) this.collective(what, (pg) => pg.barrier());
  }

  /** Bucketed gradient all-reduce over `params` (null in a one-process run). */
  gradientSynchronizer(params: readonly Tensor[], bucketBytes = DEFAULT_BUCKET_BYTES): GradientSynchronizer | null {
    return this.enabled ? new GradientSynchronizer(this.pg!, params, bucketBytes, "sum") : null;
  }

  /**
   * Records this rank's failure in the rendezvous store so that its peers
   * name it; the first report wins. Never throws (the store may be gone).
   */
  reportFailure(message: string): void {
    if (!this.enabled) return;
    try {
      if (this.pg!.storeAdd(FAILED_COUNT_KEY, 1) === 1) this.pg!.storeSet(FAILED_KEY, `rank ${this.rank} failed: ${message}`);
    } catch {
      // The store's host (rank 0) is gone: the peers will say so themselves.
    }
  }

  /** Closes the group (after a barrier, so that no peer still talks to this one). */
  destroy(): void {
    if (!this.pg || this.pg.isDestroyed) return;
    this.pg.destroy();
  }

  private explain(what: string, e: Error): string {
    const pg = this.pg!;
    const me = `rank ${this.rank} of ${this.worldSize}`;
    const cause = firstLine(e.message);
    let reported: string | null;
    try {
      reported = pg.storeGet(FAILED_KEY);
    } catch {
      return `${me}: ${what} failed, and the rendezvous store of ${this.storeHost} (${pg.masterAddr}:${pg.masterPort}) is unreachable: ${this.storeHost} stopped (killed or crashed; see its output). Cause here: ${cause}`;
    }
    if (reported) return `${me}: stopping because ${reported} (here: ${what} failed: ${cause})`;
    const silent = this.census();
    try {
      reported = pg.storeGet(FAILED_KEY); // a rank that failed on its own may have reported meanwhile
    } catch {
      reported = null;
    }
    if (reported) return `${me}: stopping because ${reported} (here: ${what} failed: ${cause})`;
    if (silent === null) return `${me}: ${what} failed and the rendezvous store went away meanwhile: ${this.storeHost} stopped. Cause here: ${cause}`;
    if (silent.length) {
      const who = silent.length === 1 ? `rank ${silent[0]}` : `ranks ${silent.join(", ")}`;
      return `${me}: ${what} failed: ${who} did not answer within ${this.censusMs} ms (killed, crashed or hung; see its output). Cause here: ${cause}`;
    }
    return `${me}: ${what} failed (every rank is still alive; timeout ${pg.timeoutMs} ms, distributed.timeout_s): ${cause}`;
  }

  /** Ranks that did not check in within censusMs; null when the store is gone. */
  private census(): number[] | null {
    const pg = this.pg!;
    try {
      pg.storeSet(`${ALIVE_PREFIX}${this.rank}`, "1");
      const deadline = performance.now() + this.censusMs;
      let silent: number[] = [];
      do {
        silent = [];
        for (let r = 0; r < this.worldSize; r++) if (r !== this.rank && pg.storeGet(`${ALIVE_PREFIX}${r}`) === null) silent.push(r);
        if (!silent.length) return [];
        sleepMs(50);
      } while (performance.now() < deadline);
      return silent;
    } catch {
      return null;
    }
  }
}

function firstLine(s: string): string {
  const line = s.split("\n").find((l) => l.trim() !== "") ?? s;
  return line.length > 400 ? `${line.slice(0, 400)}...` : line;
}

/** Blocks the thread (the census runs inside a failing synchronous collective path). */
function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
