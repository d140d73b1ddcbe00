// The benchmarks' bridge to the real Python peers (transformers, PEFT, TRL) in
// the peer venv of scripts/setup-peers.sh: a peer script runs as a server in
// its own process, one JSON request per stdin line and one JSON reply per
// stdout line (bench/peer_common.py is the other end), so the two sides can
// alternate run by run and see the same load from other processes.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

/** The repository root (compiled benches live in dist/bench). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BENCH_PY = path.join(ROOT, "bench");
export const PEER_PYTHON = path.join(path.resolve(ROOT, process.env.VLM_PEERS_VENV || ".venv-peers"), "bin/python");

/** Why the peer side cannot run, or null when it can. */
export function peerUnavailable(): string | null {
  if (!fs.existsSync(PEER_PYTHON)) return `no peer venv at ${PEER_PYTHON}; run 'bash scripts/setup-peers.sh' first`;
  return null;
}

export type PeerReply = Record<string, unknown>;

export class PeerServer {
  private readonly lines: AsyncIterator<string>;
  private stderr = "";
  /** The script's first (ready) line: versions, thread count, and what the script reports at start. */
  info: PeerReply = {};

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly name: string,
  ) {
    child.stderr.on("data", (b: Buffer) => {
      this.stderr += b.toString();
      if (this.stderr.length > 1 << 20) this.stderr = this.stderr.slice(-(1 << 19));
    });
    this.lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  /** Starts `bench/<script> ...args` with `threads` intra-op threads and waits for its ready line. */
  static async start(script: string, args: string[], threads: number): Promise<PeerServer> {
    const why = peerUnavailable();
    if (why) throw new Error(`bench: ${why}`);
    const n = String(threads);
    const child = spawn(PEER_PYTHON, [path.join(BENCH_PY, script), ...args], {
      stdio: "pipe",
      cwd: ROOT,
      env: {
        ...process.env,
        OMP_NUM_THREADS: n,
        MKL_NUM_THREADS: n,
        // Nothing may reach a hub.
        HF_HUB_OFFLINE: "1",
        TRANSFORMERS_OFFLINE: "1",
        HF_DATASETS_OFFLINE: "1",
        HF_HUB_DISABLE_TELEMETRY: "1",
        TOKENIZERS_PARALLELISM: "false",
        PYTHONPATH: BENCH_PY,
        PYTHONUNBUFFERED: "1",
      },
    });
    const s = new PeerServer(child, script);
    s.info = await s.read();
    return s;
  }

  private async read(): Promise<PeerReply> {
    const r = await this.lines.next();
    if (r.done) throw new Error(`bench: ${this.name} ended early (exit ${this.child.exitCode}):\n${this.stderr.slice(-6000)}`);
    let o: PeerReply;
    try {
      o = JSON.parse(r.value) as PeerReply;
    } catch {
      throw new Error(`bench: ${this.name} wrote a line that is not JSON: ${r.value.slice(0, 500)}`);
    }
    if (typeof o.error === "string") throw new Error(`bench: ${this.name}: ${o.error}`);
    return o;
  }

  async ask(request: Record<string, unknown>): Promise<PeerReply> {
    this.child.stdin.write(JSON.stringify(request) + "\n");
    return this.read();
  }

  /** Asks the script to quit and waits for it to exit (its memory is freed before the next side loads). */
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.stdin.end(JSON.stringify({ cmd: "quit" }) + "\n");
    await exited;
  }
}
