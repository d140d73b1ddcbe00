// Training checkpoints: one folder per save, written atomically, plus a
// `latest` pointer updated only after the folder is complete, so an
// interrupted save never costs the last good state.
//
//   <runDir>/checkpoints/step-00000120/
//       model/ or adapter/       weights (HF folder or PEFT adapter)
//       optimizer.safetensors    optimizer state tensors
//       rng.safetensors          global and sampling generator states
//       trainer_state.json       step, data position, scheduler, optimizer meta, ...
//       config.yaml              the resolved run config
//   <runDir>/checkpoints/latest  name of the newest complete checkpoint
import fs from "node:fs";
import path from "node:path";
import { writeFolderAtomic, writeTextFileAtomic } from "../io/atomic.js";

export const CHECKPOINTS_DIR = "checkpoints";
const LATEST = "latest";
const NAME_RE = /^step-(\d{8})$/;

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, "0")}`;
}

export interface SaveCheckpointOptions {
  /** Keep at most this many checkpoints (oldest removed after a successful save); 0 keeps all. Default 2. */
  keepLast?: number;
}

/**
 * Writes checkpoint `step` under runDir: `fill(tmpDir)` writes the files into
 * a temporary folder, which then takes its final name; `latest` is moved to
 * it last. Returns the checkpoint's path.
 */
export function saveCheckpoint(runDir: string, step: number, fill: (dir: string) => void, opts: SaveCheckpointOptions = {}): string {
  const root = path.join(runDir, CHECKPOINTS_DIR);
  const name = checkpointName(step);
  const target = path.join(root, name);
  writeFolderAtomic(target, fill);
  writeTextFileAtomic(path.join(root, LATEST), name + "\n");
  const keep = opts.keepLast ?? 2;
  if (keep > 0) {
    const all = listCheckpoints(runDir);
    for (const old of all.slice(0, Math.max(0, all.length - keep))) {
      if (old.name !== name) fs.rmSync(old.path, { recursive: true, force: true });
    }
  }
  return target;
}

export interface CheckpointRef {
  name: string;
  step: number;
  path: string;
}

/** Complete checkpoints under runDir, oldest first (temporary folders are ignored). */
export function listCheckpoints(runDir: string): CheckpointRef[] {
  const root = path.join(runDir, CHECKPOINTS_DIR);
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && NAME_RE.test(e.name))
    .map((e) => ({ name: e.name, step: Number(NAME_RE.exec(e.name)![1]), path: path.join(root, e.name) }))
    .sort((a, b) => a.step - b.step);
}

/**
 * The checkpoint to resume from: the one `latest` names when it exists,
 * else the newest complete folder; null when there is none.
 */
export function latestCheckpoint(runDir: string): CheckpointRef | null {
  const root = path.join(runDir, CHECKPOINTS_DIR);
  const pointer = path.join(root, LATEST);
  if (fs.existsSync(pointer)) {
    const name = fs.readFileSync(pointer, "utf8").trim();
    const m = NAME_RE.exec(name);
    const p = path.join(root, name);
    if (m && fs.existsSync(p)) return { name, step: Number(m[1]), path: p };
  }
  const all = listCheckpoints(runDir);
  return all.length ? all[all.length - 1] : null;
}

/** Resolves a --resume argument: "auto" (latest in runDir, or null), a checkpoint folder, or a run folder. */
export function resolveResume(arg: string | undefined, runDir: string): CheckpointRef | null {
  if (!arg) return null;
  if (arg === "auto") return latestCheckpoint(runDir);
  const abs = path.resolve(arg);
  if (!fs.existsSync(abs)) throw new Error(`resume: ${abs} does not exist`);
  const m = NAME_RE.exec(path.basename(abs));
  if (m && fs.existsSync(path.join(abs, "trainer_state.json"))) return { name: path.basename(abs), step: Number(m[1]), path: abs };
  const inRun = latestCheckpoint(abs);
  if (inRun) return inRun;
  throw new Error(`resume: ${abs} is neither a checkpoint folder (step-NNNNNNNN with trainer_state.json) nor a run folder with checkpoints/`);
}

export function readJson<T>(file: string): T {
  let raw: string;
  try {
    raw = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(raw) as T;
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}
