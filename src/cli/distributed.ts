// Runs a command as one of several data-parallel workers when torchrun (or
// `--nproc`, src/cli/launch.ts) started it: joins the process group from
// torchrun's variables, binds each CUDA rank to cuda:LOCAL_RANK, shares the
// machine's cores among its workers, and makes a failure end the whole run
// quickly: the failing rank records its message in the rendezvous store and
// exits at once (closing its sockets, so that its peers' next collective
// fails instead of waiting for the timeout), and the peers exit naming it.
import os from "node:os";
import type { RunConfig } from "../config/run_config.js";
import { DataParallel, isMultiProcessEnv, PeerFailureError, setNumThreads } from "../torch/index.js";

/** The device of this rank: any CUDA device becomes cuda:LOCAL_RANK (one GPU per worker); CPU stays. */
export function rankDevice(device: string, localRank: number): string {
  return device.startsWith("cuda") ? `cuda:${localRank}` : device;
}

/** Intra-op threads per worker when nothing chose them: the cores split among this machine's workers. */
export function threadsPerWorker(cores: number, localWorldSize: number): number {
  return Math.max(1, Math.floor(cores / Math.max(1, localWorldSize)));
}

/**
 * Runs `fn` with the data-parallel context of this process: a one-process
 * context unless WORLD_SIZE > 1. In a multi-process run, success ends with a
 * barrier (rank 0 may still be writing the final model) and the group's
 * teardown; an error is reported to the peers and ends the process with
 * exit code 1 right away.
 */
export async function runDataParallel<T>(command: string, cfg: RunConfig, fn: (dp: DataParallel, cfg: RunConfig) => Promise<T>): Promise<T> {
  if (!isMultiProcessEnv()) return fn(DataParallel.single(), cfg);
  const localRank = Number(process.env.LOCAL_RANK ?? process.env.RANK ?? 0);
  const localWorldSize = Number(process.env.LOCAL_WORLD_SIZE ?? 1) || 1;
  const device = rankDevice(cfg.device, localRank);
  if (cfg.threads === undefined && !process.env.VLM_NUM_THREADS) setNumThreads(threadsPerWorker(os.availableParallelism(), localWorldSize));
  const d = cfg.distributed;
  let dp: DataParallel | null = null;
  try {
    dp = await DataParallel.init({ backend: d.backend, device, timeoutMs: Math.round(d.timeout_s * 1000) });
    watchLauncher(dp);
    if (dp.isMain) {
      console.log(`${command}: data parallel over ${dp.worldSize} processes (${dp.pg!.backend}, rendezvous ${dp.pg!.masterAddr}:${dp.pg!.masterPort}, timeout ${d.timeout_s} s)`);
    }
    const result = await fn(dp, { ...cfg, device });
    dp.barrier("the final barrier");
    dp.destroy();
    return result;
  } catch (e) {
    const message = (e as Error).message ?? String(e);
    if (dp && !(e instanceof PeerFailureError)) dp.reportFailure(message.split("\n")[0]);
    process.stderr.write(`vlm-grpo ${command} [rank ${dp?.rank ?? process.env.RANK}]: ${message}\n`);
    if (process.env.VLM_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    // Exit now: waiting for the event loop to drain could hold the sockets open
    // (or wait forever on a rendezvous thread that never returns).
    process.exit(1);
  }
}

/**
 * Under `--nproc`, the launcher is connected by an IPC channel: when it goes
 * away (killed), this worker must not train on alone.
 */
function watchLauncher(dp: DataParallel): void {
  if (process.env.VLM_LAUNCHER !== "1" || !process.connected) return;
  process.channel?.unref();
  process.once("disconnect", () => {
    dp.reportFailure("the --nproc launcher exited");
    process.stderr.write(`vlm-grpo [rank ${dp.rank}]: the --nproc launcher exited; stopping\n`);
    process.exit(1);
  });
}
