// User reward modules run in a worker thread each, with a time limit per
// call, so user code can neither hang nor silently end a run:
// - a promise that never settles: the call fails when the limit passes (and
//   the pending timer keeps the event loop alive until then, so the process
//   cannot drain its loop and exit 0 with nothing written);
// - a busy loop: the worker is terminated (V8 stops its JavaScript) and the
//   call fails, while the main thread stays free to handle signals;
// - an exception thrown later (a stray timer) or process.exit in the module:
//   the worker ends and the pending call fails naming the module.
// Each such failure names the reward, its module and the limit. Built-in
// rewards stay in-process (they are pure and fast). Calls cost one structured
// clone of the context (completions, labels, parses) each way.
import { Worker } from "node:worker_threads";
import type { RewardContext, RewardFunction } from "./types.js";

/** A failure of the worker or its time limit (not an exception of the user function itself). */
export class RewardWorkerError extends Error {}

/** Default per-call limit in seconds (the run config's grpo.reward_timeout_s). */
export const DEFAULT_REWARD_TIMEOUT_S = 60;

export interface IsolatedRewardOptions {
  /** Reward name (for messages). */
  name: string;
  /** The module path as the config gave it, and the folder it is relative to. */
  modulePath: string;
  configDir: string;
  exportName: string;
  options: Record<string, unknown>;
  /** Per-call time limit in seconds. */
  timeoutSeconds: number;
  /** Time limit of starting the worker and importing the module. Default max(timeoutSeconds, 60): a busy machine can take seconds to start a thread. */
  loadTimeoutSeconds?: number;
  /** What the limit is called where users set it (for messages). Default "grpo.reward_timeout_s". */
  limitKey?: string;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

type FromWorker = { type: "ready" } | { type: "load_error"; message: string } | { type: "result"; id: number; scores: unknown } | { type: "error"; id: number; message: string };

/** One user reward module loaded in its own worker thread. */
export class RewardWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  /** Why the worker cannot take calls any more (null while it can). */
  private deadReason: string | null = null;
  private closing = false;
  private readonly label: string;

  private constructor(private readonly o: IsolatedRewardOptions) {
    this.label = `reward function '${o.name}' (module ${o.modulePath})`;
    this.worker = new Worker(new URL("./reward_worker.js", import.meta.url), {
      workerData: { modulePath: o.modulePath, exportName: o.exportName, configDir: o.configDir, options: o.options },
    });
    this.worker.on("message", (m: FromWorker) => this.onMessage(m));
    this.worker.on("error", (e) => this.fail(`${this.label} crashed: ${e?.message ?? String(e)}`));
    this.worker.on("exit", (code) => {
      if (!this.closing) this.fail(`${this.label}: its worker thread exited (code ${code}); does the module call process.exit?`);
    });
    // An idle worker must not keep the process alive; a pending call's timer does. After the
    // listeners: adding a 'message' listener refs the worker's port again.
    this.worker.unref();
  }

  private get limitText(): string {
    return `${this.o.timeoutSeconds} s (${this.o.limitKey ?? "grpo.reward_timeout_s"})`;
  }

  /** Starts the worker and waits until the module is imported and its export checked. */
  static start(o: IsolatedRewardOptions): Promise<RewardWorker> {
    if (!(o.timeoutSeconds > 0) || !Number.isFinite(o.timeoutSeconds)) throw new Error(`reward module ${o.modulePath}: the time limit must be a positive number of seconds, got ${o.timeoutSeconds}`);
    const loadLimit = o.loadTimeoutSeconds ?? Math.max(o.timeoutSeconds, 60);
    const w = new RewardWorker(o);
    return new Promise<RewardWorker>((resolve, reject) => {
      const timer = setTimeout(() => {
        w.pending.delete(0);
        reject(new RewardWorkerError(`reward module ${o.modulePath}: loading did not finish within ${loadLimit} s; does its top-level code wait or loop forever?`));
        void w.close();
      }, loadLimit * 1000);
      w.pending.set(0, {
        resolve: () => resolve(w),
        reject: (e) => {
          reject(e);
          void w.close();
        },
        timer,
      });
    });
  }

  private onMessage(m: FromWorker): void {
    if (m.type === "ready" || m.type === "load_error") {
      const p = this.pending.get(0);
      if (!p) return;
      this.pending.delete(0);
      clearTimeout(p.timer);
      if (m.type === "ready") p.resolve(undefined);
      else p.reject(new Error(m.message));
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.type === "result") p.resolve(m.scores);
    else p.reject(new Error(m.message));
  }

  /** Rejects every pending call with `reason`; later calls fail with it too. */
  private fail(reason: string): void {
    if (this.deadReason === null) this.deadReason = reason;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new RewardWorkerError(reason));
    }
  }

  /** Calls the function on `ctx`; rejects when it throws, when the worker dies, or after the time limit. */
  call(ctx: RewardContext): Promise<unknown> {
    if (this.deadReason !== null) return Promise.reject(new RewardWorkerError(this.deadReason));
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const reason = `${this.label} did not return within ${this.limitText}; its worker thread was stopped`;
        this.fail(reason);
        void this.close();
        reject(new RewardWorkerError(reason));
      }, this.o.timeoutSeconds * 1000);
      this.pending.set(id, { resolve, reject, timer });
      this.worker.postMessage({ type: "call", id, ctx });
    });
  }

  /** Stops the worker (a busy loop included); pending calls fail. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.fail(`${this.label}: its worker thread was closed`);
    await this.worker.terminate();
  }
}

/** A RewardFunction whose calls go to a user module in its own worker thread. */
export async function isolatedUserReward(o: IsolatedRewardOptions & { weight: number }): Promise<RewardFunction> {
  const w = await RewardWorker.start(o);
  return {
    name: o.name,
    weight: o.weight,
    fn: (ctx) => w.call(ctx) as Promise<(number | null)[]>,
    close: () => w.close(),
  };
}
