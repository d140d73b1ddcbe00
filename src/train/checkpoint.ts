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
//
// Resuming ("auto") does not trust `latest` alone: a kill between the
// folder's rename and the pointer's update leaves a newer complete folder,
// and a disk can damage a file after the fact. It scans the step folders
// newest first, checks each (checkpoint_check.ts) and takes the newest intact
// one, saying which ones it skipped and why. Temporary folders of saves that
// never finished are removed when a run starts (removeStaleTemporaries).
import fs from "node:fs";
import path from "node:path";
import { writeFolderAtomic, writeTextFileAtomic } from "../io/atomic.js";
import { checkCheckpoint } from "./checkpoint_check.js";

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

/** The name `latest` points at, or null (missing, unreadable or not a step folder name). */
function latestPointer(runDir: string): string | null {
  try {
    const name = fs.readFileSync(path.join(runDir, CHECKPOINTS_DIR, LATEST), "utf8").trim();
    return NAME_RE.test(name) ? name : null;
  } catch {
    return null;
  }
}

/** A checkpoint passed over on resume, and why. */
export interface SkippedCheckpoint {
  ref: CheckpointRef;
  reason: string;
}

/** The newest intact checkpoint of a run and the newer ones it passed over. */
export interface ResumeChoice {
  ref: CheckpointRef | null;
  skipped: SkippedCheckpoint[];
}

/**
 * The newest intact checkpoint under runDir: every step folder is a
 * candidate, newest first, whatever `latest` says (it may lag behind a
 * completed save); the first that passes checkCheckpoint wins.
 */
export function newestIntactCheckpoint(runDir: string): ResumeChoice {
  const skipped: SkippedCheckpoint[] = [];
  for (const ref of listCheckpoints(runDir).reverse()) {
    const problem = checkCheckpoint(ref.path, ref.step);
    if (problem === null) return { ref, skipped };
    skipped.push({ ref, reason: problem });
  }
  return { ref: null, skipped };
}

/**
 * The checkpoint to resume from: the newest intact one (see
 * newestIntactCheckpoint); null when there is none.
 */
export function latestCheckpoint(runDir: string): CheckpointRef | null {
  return newestIntactCheckpoint(runDir).ref;
}

/** Says which checkpoint a resume takes and which newer ones it skipped, and why. */
function explainChoice(runDir: string, c: ResumeChoice, log: (line: string) => void): void {
  for (const s of c.skipped) log(`resume: skipping ${s.ref.path}: ${s.reason}`);
  const pointer = latestPointer(runDir);
  if (c.ref && pointer && pointer !== c.ref.name && !c.skipped.some((s) => s.ref.name === pointer)) {
    log(`resume: ${CHECKPOINTS_DIR}/${LATEST} names ${pointer}, but ${c.ref.name} is newer and complete (the run ended before updating ${LATEST})`);
  }
  if (c.ref && c.skipped.length) log(`resume: using ${c.ref.path}, the newest intact checkpoint`);
}

/**
 * Resolves a --resume argument: "auto" (the newest intact checkpoint in
 * runDir, or null), a checkpoint folder (which must be intact), or a run
 * folder (its newest intact checkpoint). `log` hears which checkpoints were
 * skipped and why.
 */
export function resolveResume(arg: string | undefined, runDir: string, log: (line: string) => void = () => {}): CheckpointRef | null {
  if (!arg) return null;
  if (arg === "auto") {
    const c = newestIntactCheckpoint(runDir);
    explainChoice(runDir, c, log);
    if (!c.ref && c.skipped.length) {
      throw new Error(`resume: no intact checkpoint in ${path.join(runDir, CHECKPOINTS_DIR)}: ${c.skipped.map((s) => `${s.ref.name}: ${s.reason}`).join("; ")}`);
    }
    return c.ref;
  }
  const abs = path.resolve(arg);
  if (!fs.existsSync(abs)) throw new Error(`resume: ${abs} does not exist`);
  const m = NAME_RE.exec(path.basename(abs));
  if (m && fs.existsSync(path.join(abs, "trainer_state.json"))) {
    const step = Number(m[1]);
    const problem = checkCheckpoint(abs, step);
    if (problem !== null) throw new Error(`resume: checkpoint ${abs} is damaged: ${problem}; pass its run folder or --resume auto to take the newest intact one`);
    return { name: path.basename(abs), step, path: abs };
  }
  if (fs.existsSync(path.join(abs, CHECKPOINTS_DIR))) {
    const c = newestIntactCheckpoint(abs);
    explainChoice(abs, c, log);
    if (c.ref) return c.ref;
    if (c.skipped.length) throw new Error(`resume: no intact checkpoint in ${path.join(abs, CHECKPOINTS_DIR)}: ${c.skipped.map((s) => `${s.ref.name}: ${s.reason}`).join("; ")}`);
  }
  throw new Error(`resume: ${abs} is neither a checkpoint folder (step-NNNNNNNN with trainer_state.json) nor a run folder with checkpoints/`);
}

/** Names of temporary entries writeFolderAtomic / writeFileAtomic leave when a process dies mid-save. */
const TEMP_RE = /^\.(.+)\.(tmp|old)-(\d+)-[0-9a-f]{8}$/;

function processAlive(pid: number): boolean {
  if (pid === process.pid) return false; // ours cannot be mid-save at start: a previous run that had our pid (containers reuse them)
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the temporary files and folders of saves that never finished
 * (`.<name>.tmp-<pid>-<hex>` in the run folder and its checkpoints folder)
 * whose process is gone. A backup (`.<name>.old-...`) whose target is missing
 * is the complete previous version, left by a kill between writeFolderAtomic's
 * two renames: it is renamed back instead. Returns one line per action.
 */
export function removeStaleTemporaries(runDir: string): string[] {
  const done: string[] = [];
  for (const dir of [runDir, path.join(runDir, CHECKPOINTS_DIR)]) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = TEMP_RE.exec(name);
      if (!m || processAlive(Number(m[3]))) continue;
      const p = path.join(dir, name);
      const target = path.join(dir, m[1]);
      if (m[2] === "old" && !fs.existsSync(target)) {
        fs.renameSync(p, target);
        done.push(`restored ${target} from the backup of an interrupted save`);
      } else {
        fs.rmSync(p, { recursive: true, force: true });
        done.push(`removed ${p}, left by an interrupted save`);
      }
    }
  }
  return done;
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
