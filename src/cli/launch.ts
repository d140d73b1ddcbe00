// `vlm-grpo <command> --nproc N ...`: torchrun's job on one machine, for
// users without Python. Starts N workers of the same command with the
// variables torchrun gives its workers (RANK, LOCAL_RANK, WORLD_SIZE,
// LOCAL_WORLD_SIZE, GROUP_RANK, ROLE_RANK, ROLE_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT on a free loopback port), streams their output line by line
// prefixed with "[rankN]: " (torchrun's --tee style), and when one fails
// stops the others (SIGTERM, then SIGKILL after a grace period) and exits
// with the failing worker's code (128 + signal number for a signal).
//
// Workers run in their own process groups, so that a Ctrl-C at the terminal
// reaches them once, through the launcher (SIGINT: each finishes its step,
// the ranks agree to stop, rank 0 saves a checkpoint); a second Ctrl-C makes
// them quit at once. An IPC channel lets a worker notice when the launcher
// itself is killed (src/cli/distributed.ts).
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { UsageError } from "./args.js";

/** Commands that can run as several workers. */
export const PARALLEL_COMMANDS = ["sft", "grpo", "eval", "predict"] as const;

/** Seconds between SIGTERM and SIGKILL when stopping the workers. */
export const DEFAULT_GRACE_MS = 10_000;

/** Takes `--nproc N` (or `--nproc=N`) out of argv; null when absent. */
export function extractNproc(argv: readonly string[]): { nproc: number; argv: string[] } | null {
  const rest: string[] = [];
  let nproc: number | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let v: string | undefined;
    if (a === "--nproc") {
      v = argv[++i];
      if (v === undefined) throw new UsageError("--nproc needs a value (the number of worker processes)");
    } else if (a.startsWith("--nproc=")) {
      v = a.slice("--nproc=".length);
    } else {
      rest.push(a);
      continue;
    }
    if (nproc !== null) throw new UsageError("--nproc is given twice");
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--nproc: expected a positive integer, got '${v}'`);
    nproc = Number(v);
  }
  return nproc === null ? null : { nproc, argv: rest };
}

/** A TCP port on loopback that was free a moment ago. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** torchrun's worker variables for `rank` of `nproc` on one machine. */
export function workerEnv(rank: number, nproc: number, port: number, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...base,
    RANK: String(rank),
    LOCAL_RANK: String(rank),
    GROUP_RANK: "0",
    ROLE_RANK: String(rank),
    WORLD_SIZE: String(nproc),
    LOCAL_WORLD_SIZE: String(nproc),
    ROLE_WORLD_SIZE: String(nproc),
    MASTER_ADDR: "127.0.0.1",
    MASTER_PORT: String(port),
    VLM_LAUNCHER: "1",
  };
}

/** Writes a child's stream line by line with a prefix (a partial last line is held until it ends). */
function prefixLines(stream: NodeJS.ReadableStream, prefix: string, out: NodeJS.WritableStream): () => void {
  let pending = "";
  stream.setEncoding?.("utf8");
  stream.on("data", (chunk: string) => {
    const text = pending + chunk;
    const lines = text.split(/\r?\n|\r/);
    pending = lines.pop()!;
    for (const l of lines) out.write(`${prefix}${l}\n`);
  });
  return () => {
    if (pending) out.write(`${prefix}${pending}\n`);
    pending = "";
  };
}

export interface LaunchOptions {
  /** The script the workers run. Default: this package's CLI (dist/src/cli/main.js). */
  script?: string;
  graceMs?: number;
  /** Where the prefixed output and the launcher's own lines go. */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

/** Runs `command argv` as `nproc` workers; resolves to the exit code the launcher should end with. */
export async function launchWorkers(command: string, nproc: number, argv: readonly string[], opts: LaunchOptions = {}): Promise<number> {
  if (!(PARALLEL_COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(`--nproc works with ${PARALLEL_COMMANDS.join(", ")}, not '${command}'`);
  }
  if (process.env.WORLD_SIZE && Number(process.env.WORLD_SIZE) > 1) {
    throw new UsageError("--nproc inside a multi-process run (WORLD_SIZE is set, e.g. by torchrun): use one launcher, not both");
  }
  const script = opts.script ?? fileURLToPath(new URL("./main.js", import.meta.url));
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  const out = opts.stdout ?? process.stdout;
  const err = opts.stderr ?? process.stderr;
  const port = await freeLoopbackPort();
  if (nproc > os.availableParallelism()) err.write(`vlm-grpo: --nproc ${nproc} is more than this machine's ${os.availableParallelism()} cores; workers will share cores\n`);

  const children: ChildProcess[] = [];
  let failure: { rank: number; code: number } | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  const running = new Set<number>();

  const stopOthers = (signal: NodeJS.Signals) => {
    for (const r of running) children[r].kill(signal);
    if (!killTimer) {
      killTimer = setTimeout(() => {
        for (const r of running) {
          err.write(`vlm-grpo: rank ${r} did not stop within ${graceMs / 1000} s; killing it\n`);
          children[r].kill("SIGKILL");
        }
      }, graceMs);
      killTimer.unref();
    }
  };
  const forward = (sig: NodeJS.Signals) => {
    for (const r of running) children[r].kill(sig);
  };
  const onSigint = () => forward("SIGINT");
  const onSigterm = () => forward("SIGTERM");
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigterm);

  try {
    const exits = Array.from({ length: nproc }, (_, rank) => {
      const child = spawn(process.execPath, [script, command, ...argv], {
        env: workerEnv(rank, nproc, port),
        stdio: ["ignore", "pipe", "pipe", "ipc"],
        detached: true,
      });
      children.push(child);
      running.add(rank);
      const flushOut = prefixLines(child.stdout!, `[rank${rank}]: `, out);
      const flushErr = prefixLines(child.stderr!, `[rank${rank}]: `, err);
      return new Promise<void>((resolve) => {
        child.on("error", (e) => {
          err.write(`vlm-grpo: could not start rank ${rank}: ${e.message}\n`);
        });
        child.on("close", (code, signal) => {
          flushOut();
          flushErr();
          running.delete(rank);
          const exitCode = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 1) : 1);
          if (exitCode !== 0 && !failure) {
            failure = { rank, code: exitCode };
            err.write(`vlm-grpo: rank ${rank} exited with ${signal ? `signal ${signal}` : `code ${exitCode}`}; stopping the other ranks\n`);
            stopOthers("SIGTERM");
          }
          resolve();
        });
      });
    });
    await Promise.all(exits);
  } finally {
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigterm);
    if (killTimer) clearTimeout(killTimer);
  }
  const f = failure as { rank: number; code: number } | null;
  return f ? f.code : 0;
}
