// The bridge to the Python peers: runs a script of test/peers/py/ with the
// peer venv's interpreter (scripts/setup-peers.sh), handing it a JSON request
// and a scratch folder, and reading back its JSON answer. Tensors travel as
// safetensors files in the scratch folder (written and read by each side's
// own library), everything else as JSON.
//
// Protocol: `python test/peers/py/<script> <dir>`; the script reads
// <dir>/request.json and writes <dir>/response.json. A non-zero exit is an
// error that carries the script's stderr.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (compiled tests live in dist/test/peers/helpers). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
export const PY_DIR = path.join(ROOT, "test/peers/py");
export const VENV = path.resolve(ROOT, process.env.VLM_PEERS_VENV || ".venv-peers");
export const PYTHON = path.join(VENV, "bin/python");

const inCI = process.env.CI === "true";

/**
 * Why peer tests skip, or false when they run. Under CI=true never skip: a
 * missing venv then fails each test (through runPython) instead.
 */
export function peerSkip(): string | false {
  if (inCI) return false;
  if (process.env.VLM_PEERS_UNAVAILABLE) return `peer venv unavailable: ${process.env.VLM_PEERS_UNAVAILABLE}`;
  if (!fs.existsSync(PYTHON)) return `no peer venv at ${VENV}; run 'bash scripts/setup-peers.sh' (or 'npm run test:peers')`;
  return false;
}

/** A scratch folder removed by the returned cleanup function. */
export function scratch(prefix = "vlm-peers-"): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export interface RunOptions {
  /** Folder for request/response and tensor files (default: a new scratch folder, kept for the caller to read). */
  dir?: string;
  /** Kill the script after this many ms (default 600 000). */
  timeoutMs?: number;
}

/** The peer's threads: the same count as ours (VLM_NUM_THREADS or the available cores). */
function threadEnv(): Record<string, string> {
  const n = String(Number(process.env.VLM_NUM_THREADS) || os.availableParallelism());
  return { OMP_NUM_THREADS: n, MKL_NUM_THREADS: n };
}

/**
 * Runs `test/peers/py/<script>` on `request`; returns its response and the
 * folder it worked in.
 */
export function runPython<T = unknown>(script: string, request: unknown, opts: RunOptions = {}): { response: T; dir: string } {
  if (!fs.existsSync(PYTHON)) {
    throw new Error(`peer test needs ${PYTHON} (the venv of scripts/setup-peers.sh), which is missing${inCI ? " (CI=true: the venv must exist)" : ""}`);
  }
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "vlm-peers-"));
  fs.writeFileSync(path.join(dir, "request.json"), JSON.stringify(request));
  fs.rmSync(path.join(dir, "response.json"), { force: true });
  const res = spawnSync(PYTHON, [path.join(PY_DIR, script), dir], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: opts.timeoutMs ?? 600_000,
    maxBuffer: 64 << 20,
    env: {
      ...process.env,
      ...threadEnv(),
      // Nothing may reach a hub; transformers and huggingface_hub honour these.
      HF_HUB_OFFLINE: "1",
      TRANSFORMERS_OFFLINE: "1",
      HF_DATASETS_OFFLINE: "1",
      HF_HUB_DISABLE_TELEMETRY: "1",
      TOKENIZERS_PARALLELISM: "false",
      PYTHONHASHSEED: "0",
      PYTHONPATH: PY_DIR,
    },
  });
  if (res.error) throw new Error(`peer script ${script}: ${res.error.message}`);
  if (res.status !== 0) {
    const tail = (res.stderr || "").trim().split("\n").slice(-25).join("\n");
    throw new Error(`peer script ${script} exited with ${res.status ?? res.signal}:\n${tail}`);
  }
  const file = path.join(dir, "response.json");
  if (!fs.existsSync(file)) throw new Error(`peer script ${script} wrote no response.json (stderr: ${(res.stderr || "").trim().slice(-2000)})`);
  return { response: JSON.parse(fs.readFileSync(file, "utf8")) as T, dir };
}
