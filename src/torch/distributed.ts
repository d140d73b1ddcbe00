// Data-parallel communication over torch.distributed's c10d: a process
// group (Gloo on CPU, NCCL on CUDA) that meets its peers through a TCPStore,
// configured by torchrun's environment variables (RANK, WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT, LOCAL_RANK) or explicit options. The store is
// hosted by rank 0, except under torchrun 2.x, whose agent already serves
// one at MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True): then
// every rank is a client and the keys go under the restart attempt's prefix,
// as PyTorch's env:// rendezvous does.
//
// The connection is asynchronous (a Promise). The collectives block the JS
// thread until every rank has taken part (the addon waits on c10d's work
// object), except allReduceAsync: it starts the reduction on the backend's
// own threads and returns a work handle, so the caller can prepare the next
// gradient bucket while this one travels (see src/torch/grad_sync.ts).
// The rendezvous store's key/value API is exposed for failure reports.
import { features } from "./features.js";
import { native, type ProcessGroupHandle, type WorkHandle } from "./native.js";
import { type Tensor, wrapHandle } from "./tensor.js";

/** c10d back-ends: "gloo" (CPU tensors) and "nccl" (CUDA tensors, CUDA builds only). */
export type DistributedBackend = "gloo" | "nccl";

/** Reductions of allReduce. "avg" is a sum divided by the world size (floating-point tensors only). */
export type ReduceOp = "sum" | "avg" | "max" | "min" | "product";

export interface InitProcessGroupOptions {
  /** Back-end. Default: "gloo". Use "nccl" for CUDA tensors (see defaultBackend). */
  backend?: DistributedBackend;
  /** This process's rank in [0, worldSize). Default: $RANK. */
  rank?: number;
  /** Number of processes. Default: $WORLD_SIZE. */
  worldSize?: number;
  /** Rank on this machine (picks the CUDA device). Default: $LOCAL_RANK, else `rank`. */
  localRank?: number;
  /** Host of rank 0's TCPStore. Default: $MASTER_ADDR. */
  masterAddr?: string;
  /** Port of rank 0's TCPStore. Default: $MASTER_PORT. */
  masterPort?: number;
  /** Limit for connecting and for each collective, in ms. Default: 1_800_000 (30 min, PyTorch's). */
  timeoutMs?: number;
  /** Run the TCPStore server in this process. Default: rank 0, unless torchrun's agent hosts it (TORCHELASTIC_USE_AGENT_STORE=True). */
  hostStore?: boolean;
  /** Prefix of every store key. Default: "/vlm_grpo/attempt_<TORCHELASTIC_RESTART_COUNT>" under torchrun's agent store, else "". */
  storePrefix?: string;
  /** Where the variables above are read from. Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** PyTorch's default process-group timeout (30 minutes). */
export const DEFAULT_PG_TIMEOUT_MS = 30 * 60 * 1000;

const ENV_HINT = "torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT";

/** Whether c10d was compiled into the addon: any back-end, or the one named. */
export function isDistributedAvailable(backend?: DistributedBackend): boolean {
  if (backend === "gloo") return features.gloo;
  if (backend === "nccl") return features.nccl;
  return features.gloo || features.nccl;
}

/** The back-end for tensors on `device`: NCCL for CUDA when compiled in, else Gloo. */
export function defaultBackend(device: string): DistributedBackend {
  return device.startsWith("cuda") && features.nccl ? "nccl" : "gloo";
}

function intSetting(
  value: number | undefined,
  env: Readonly<Record<string, string | undefined>>,
  variable: string,
  option: string,
  min: number,
): number | undefined {
  if (value !== undefined) {
    if (!Number.isInteger(value) || value < min) {
      throw new Error(`initProcessGroup: options.${option} must be an integer >= ${min}, got ${value}`);
    }
    return value;
  }
  const raw = env[variable];
  if (raw === undefined || raw.trim() === "") return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min) {
    throw new Error(`initProcessGroup: ${variable}='${raw}' is not an integer >= ${min} (fix ${variable} or pass options.${option})`);
  }
  return Number(raw);
}

function required<T>(value: T | undefined, variable: string, option: string): T {
  if (value === undefined) {
    throw new Error(`initProcessGroup: ${option} is not set: pass options.${option} or set ${variable} (${ENV_HINT})`);
  }
  return value;
}

/** Every setting of a process group, resolved from options and environment. */
export interface ProcessGroupSettings {
  backend: DistributedBackend;
  rank: number;
  worldSize: number;
  localRank: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs: number;
  hostStore: boolean;
  storePrefix: string;
}

/** Resolves and validates the settings (exported for tests and config checks); does not check the build. */
export function resolveProcessGroupSettings(opts: InitProcessGroupOptions = {}): ProcessGroupSettings {
  const env = opts.env ?? process.env;
  const backend = opts.backend ?? "gloo";
  if (backend !== "gloo" && backend !== "nccl") {
    throw new Error(`initProcessGroup: unknown backend '${String(backend)}' (expected 'gloo' or 'nccl')`);
  }
  const worldSize = required(intSetting(opts.worldSize, env, "WORLD_SIZE", "worldSize", 1), "WORLD_SIZE", "worldSize");
  const rank = required(intSetting(opts.rank, env, "RANK", "rank", 0), "RANK", "rank");
  if (rank >= worldSize) {
    throw new Error(`initProcessGroup: rank ${rank} is out of range for world size ${worldSize} (ranks are 0..${worldSize - 1})`);
  }
  const localRank = intSetting(opts.localRank, env, "LOCAL_RANK", "localRank", 0) ?? rank;
  const masterAddr = required(opts.masterAddr ?? (env.MASTER_ADDR?.trim() || undefined), "MASTER_ADDR", "masterAddr");
  if (masterAddr.trim() === "") throw new Error("initProcessGroup: options.masterAddr is empty");
  const masterPort = required(intSetting(opts.masterPort, env, "MASTER_PORT", "masterPort", 1), "MASTER_PORT", "masterPort");
  if (masterPort > 65535) throw new Error(`initProcessGroup: masterPort must be in [1, 65535], got ${masterPort}`);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PG_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    throw new Error(`initProcessGroup: options.timeoutMs must be a positive integer, got ${timeoutMs}`);
  }
  const agentStore = env.TORCHELASTIC_USE_AGENT_STORE === "True";
  const hostStore = opts.hostStore ?? (agentStore ? false : rank === 0);
  const storePrefix = opts.storePrefix ?? (agentStore ? `/vlm_grpo/attempt_${env.TORCHELASTIC_RESTART_COUNT?.trim() || "0"}` : "");
  return { backend, rank, worldSize, localRank, masterAddr, masterPort, timeoutMs, hostStore, storePrefix };
}

/** A connected c10d process group. Collectives are blocking; see the file header. */
export class ProcessGroup {
  readonly backend: DistributedBackend;
  readonly rank: number;
  readonly worldSize: number;
  /** Rank on this machine (use `cuda:${localRank}` with NCCL). */
  readonly localRank: number;
  readonly masterAddr: string;
  readonly masterPort: number;
  readonly timeoutMs: number;
  /** This process runs the rendezvous store (else rank 0 or torchrun's agent does). */
  readonly hostsStore: boolean;
  private readonly handle: ProcessGroupHandle;
  private destroyed = false;

  /** @internal use initProcessGroup. */
  constructor(handle: ProcessGroupHandle, settings: ProcessGroupSettings) {
    this.handle = handle;
    this.backend = settings.backend;
    this.rank = settings.rank;
    this.worldSize = settings.worldSize;
    this.localRank = settings.localRank;
    this.masterAddr = settings.masterAddr;
    this.masterPort = settings.masterPort;
    this.timeoutMs = settings.timeoutMs;
    this.hostsStore = settings.hostStore;
  }

  private live(op: string): ProcessGroupHandle {
    if (this.destroyed) throw new Error(`ProcessGroup.${op}: the process group was destroyed`);
    return this.handle;
  }

  /**
   * Reduces `tensor` across ranks, in place, and returns it. Every rank must
   * call it with a tensor of the same shape and dtype. The write bypasses
   * autograd: use it on gradients or detached values.
   */
  allReduce(tensor: Tensor, op: ReduceOp = "sum"): Tensor {
    native.pgAllReduce(this.live("allReduce"), tensor._h, op);
    return tensor;
  }

  /** Overwrites `tensor` on every rank with rank `src`'s values, in place; returns it. */
  broadcast(tensor: Tensor, src = 0): Tensor {
    if (!Number.isInteger(src) || src < 0 || src >= this.worldSize) {
      throw new RangeError(`ProcessGroup.broadcast: src must be a rank in [0, ${this.worldSize}), got ${src}`);
    }
    native.pgBroadcast(this.live("broadcast"), tensor._h, src);
    return tensor;
  }

  /**
   * Every rank's `tensor`, in rank order, as new tensors (owned by the
   * current scope). All ranks must pass the same shape and dtype. `stack(pg.allGather(t))` gives one [worldSize, ...] tensor.
   */
  allGather(tensor: Tensor): Tensor[] {
    return native.pgAllGather(this.live("allGather"), tensor._h).map(wrapHandle);
  }

  /**
   * Starts reducing `tensor` across ranks and returns at once; the result is
   * in `tensor` after `wait()`. Every rank must start the same all-reduces in
   * the same order. Until then the work owns the data: do not read or write
   * `tensor` (releasing its handle is fine).
   */
  allReduceAsync(tensor: Tensor, op: ReduceOp = "sum"): AllReduceWork {
    return new AllReduceWork(native.pgAllReduceAsync(this.live("allReduceAsync"), tensor._h, op));
  }

  /** Sets `key` in the rendezvous store (every rank sees it). */
  storeSet(key: string, value: string): void {
    native.pgStoreSet(this.live("storeSet"), key, value);
  }

  /** The value of `key` in the rendezvous store, or null when it is not set (never waits). */
  storeGet(key: string): string | null {
    return native.pgStoreGet(this.live("storeGet"), key);
  }

  /** Adds `n` to the counter `key` (0 when new) and returns the new value. */
  storeAdd(key: string, n: number): number {
    return native.pgStoreAdd(this.live("storeAdd"), key, n);
  }

  /** Returns once every rank has called barrier. */
  barrier(): void {
    native.pgBarrier(this.live("barrier"));
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /**
   * Releases the group's threads and sockets (rank 0 also stops the store).
   * Call barrier() first so that no peer is still talking to this one.
   * Idempotent.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    native.pgDestroy(this.handle);
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** An all-reduce in flight (ProcessGroup.allReduceAsync). */
export class AllReduceWork {
  private waited = false;
  /** @internal */
  constructor(private readonly handle: WorkHandle) {}

  /** Whether the reduction finished (the result still needs wait()). */
  get done(): boolean {
    return native.pgWorkDone(this.handle);
  }

  /** Blocks until the reduction is done, then writes it into the tensor. Throws if a peer failed or the timeout passed. */
  wait(): void {
    if (this.waited) throw new Error("AllReduceWork.wait: already waited for");
    this.waited = true;
    native.pgWorkWait(this.handle);
  }
}

/**
 * Connects this process to its peers. Options left out come from torchrun's
 * environment variables; rank 0 hosts the rendezvous store on masterPort.
 * Rejects, naming the address, when the peers do not all arrive within timeoutMs.
 */
export async function initProcessGroup(opts: InitProcessGroupOptions = {}): Promise<ProcessGroup> {
  const settings = resolveProcessGroupSettings(opts);
  if (!isDistributedAvailable(settings.backend)) {
    throw new Error(
      settings.backend === "nccl"
        ? "initProcessGroup: backend 'nccl' is not available: the addon was built without NCCL (rebuild with LIBTORCH_USE_PYTORCH=1 against a CUDA PyTorch), or use backend 'gloo'"
        : "initProcessGroup: backend 'gloo' is not available: the addon was built without c10d/Gloo (Debian: apt-get install libgloo-dev, then npm run build:native)",
    );
  }
  const connecting = native.pgInit({
    backend: settings.backend,
    rank: settings.rank,
    worldSize: settings.worldSize,
    masterAddr: settings.masterAddr,
    masterPort: settings.masterPort,
    timeoutMs: settings.timeoutMs,
    hostStore: settings.hostStore,
    storePrefix: settings.storePrefix,
  });
  // The native rendezvous gives up by itself after timeoutMs, except when a
  // store call never returns: a libtorch 1.x client talking to torchrun 2.x's
  // agent store (a newer wire protocol) waits forever. Give up for it.
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(stuckMessage(settings, opts.env ?? process.env))), settings.timeoutMs + RENDEZVOUS_SLACK_MS);
  });
  connecting.catch(() => {}); // settled after the watchdog: nothing is waiting any more
  try {
    return new ProcessGroup(await Promise.race([connecting, watchdog]), settings);
  } finally {
    clearTimeout(timer);
  }
}

/** How long past timeoutMs the rendezvous may take before it counts as stuck. */
const RENDEZVOUS_SLACK_MS = 5000;

function stuckMessage(s: ProcessGroupSettings, env: Readonly<Record<string, string | undefined>>): string {
  const base = `initProcessGroup: rank ${s.rank} of ${s.worldSize} got no answer from the TCPStore at ${s.masterAddr}:${s.masterPort} within ${s.timeoutMs + RENDEZVOUS_SLACK_MS} ms`;
  if (env.TORCHELASTIC_USE_AGENT_STORE === "True" && features.major < 2) {
    return (
      `${base}. This addon is built against libtorch ${features.torchVersion}, whose store client cannot talk to the store that torchrun 2.x's agent serves ` +
      "(TORCHELASTIC_USE_AGENT_STORE=True). Run torchrun with --rdzv-backend c10d --rdzv-endpoint HOST:PORT and TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 " +
      "(rank 0 then hosts the store), use vlm-grpo's --nproc on one machine, or build the addon against PyTorch 2.x (LIBTORCH_USE_PYTORCH=1)"
    );
  }
  return `${base} (is something else listening on that port?)`;
}
