// The output folder of a training run, and what a new run may do to it.
//
//   empty or missing         a fresh run
//   not empty, no flag       refused: it holds another run (a re-run would mix
//                            its logs into the old metrics.jsonl and tb/)
//   not empty, --resume      the run continues: records logged after the
//                            resumed step (metrics.jsonl, completions.jsonl,
//                            tb/ events) are dropped, then new ones appended
//   not empty, --overwrite   cleared, then a fresh run; refused when the
//                            folder does not look like a run folder, when it
//                            holds one of the run's inputs (model, data,
//                            config), or when it is the working directory,
//                            one of its parents, or the home folder
//
// planOutputDir only reads; prepareOutputDir acts, and the trainers call it
// after the config, data, model and checkpoint have been checked, so a run
// that fails validation writes nothing.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { writeTextFileAtomic } from "../io/atomic.js";
import { dropEventsAfter } from "../io/sinks/tensorboard.js";
import { SESSION_END_TAG, SESSION_START_TAG } from "../io/sinks/tb_summaries.js";

/** Entries that mark a folder as a vlm-grpo run folder (what --overwrite may clear). */
export const RUN_MARKERS = ["checkpoints", "metrics.jsonl", "completions.jsonl", "tb", "final", "final-adapter", "sft_config.yaml", "grpo_config.yaml"] as const;

/** Refusals about the output folder (the message says what to do instead). */
export class OutputDirError extends Error {}

export type OutputPlan = { kind: "fresh" } | { kind: "overwrite" } | { kind: "resume"; step: number };

export interface PlanOptions {
  /** "sft" or "grpo", for messages. */
  command: string;
  /** The --resume argument, if given. */
  resume?: string;
  /** The step of the checkpoint that --resume resolved to (null: none found). */
  resumeStep: number | null;
  /** --overwrite. */
  overwrite?: boolean;
  /** Inputs of the run that --overwrite must not delete: [what, path]. */
  inputs?: [string, string][];
}

const isInside = (child: string, parent: string): boolean => {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
};

function entriesOf(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    if ((e as NodeJS.ErrnoException).code === "ENOTDIR") throw new OutputDirError(`output_dir ${dir} is a file, not a folder`);
    throw e;
  }
}

const listed = (entries: string[]) => entries.slice(0, 4).join(", ") + (entries.length > 4 ? `, ... (${entries.length} entries)` : "");

/** Decides what a run does with its output folder; reads only. Throws OutputDirError with what to do instead. */
export function planOutputDir(runDir: string, o: PlanOptions): OutputPlan {
  const dir = path.resolve(runDir);
  if (o.resume !== undefined && o.overwrite) throw new OutputDirError("--resume and --overwrite exclude each other: --resume continues the run in output_dir, --overwrite deletes it");
  const entries = entriesOf(dir);
  if (o.resume !== undefined && o.resumeStep !== null) return { kind: "resume", step: o.resumeStep };
  if (entries.length === 0) return { kind: "fresh" };
  if (o.resume !== undefined) {
    throw new OutputDirError(`--resume ${o.resume}: output_dir ${dir} holds no checkpoint to resume from (it holds ${listed(entries)}); start again with --overwrite (deletes it) or choose another --output_dir`);
  }
  if (!o.overwrite) {
    throw new OutputDirError(
      `output_dir ${dir} is not empty (it holds ${listed(entries)}); continue that run with --resume auto, start it again with --overwrite (deletes the folder's contents), or choose another --output_dir`,
    );
  }
  // --overwrite: only a run folder, never one that holds the run's inputs or the user's working tree.
  const cwd = process.cwd();
  if (isInside(cwd, dir) || dir === path.parse(dir).root || dir === os.homedir()) {
    throw new OutputDirError(`--overwrite: refusing to clear ${dir}: it is the working directory, one of its parents, the home folder or the root`);
  }
  for (const [what, p] of o.inputs ?? []) {
    if (p && isInside(path.resolve(p), dir)) throw new OutputDirError(`--overwrite: refusing to clear ${dir}: it holds the run's ${what} (${path.resolve(p)}); choose another --output_dir`);
  }
  if (!entries.some((e) => (RUN_MARKERS as readonly string[]).includes(e))) {
    throw new OutputDirError(`--overwrite: ${dir} does not look like a run folder (none of ${RUN_MARKERS.join(", ")}); it holds ${listed(entries)}; remove it yourself or choose another --output_dir`);
  }
  return { kind: "overwrite" };
}

/** Carries out a plan (after validation): clears the folder, or drops the records a resumed run will log again; creates it. */
export function prepareOutputDir(runDir: string, plan: OutputPlan): void {
  if (plan.kind === "overwrite") {
    for (const e of fs.readdirSync(runDir)) fs.rmSync(path.join(runDir, e), { recursive: true, force: true });
  }
  fs.mkdirSync(runDir, { recursive: true });
  if (plan.kind === "resume") dropRecordsAfter(runDir, plan.step);
}

/**
 * Drops what was logged after `step` in a run folder: lines of metrics.jsonl
 * and completions.jsonl with a larger step (and a torn last line), events of
 * tb/ files with a larger step, and the old hparams summaries (the resumed
 * run writes its own). Returns the number of records dropped.
 */
export function dropRecordsAfter(runDir: string, step: number): number {
  let dropped = 0;
  for (const name of ["metrics.jsonl", "completions.jsonl"]) {
    const file = path.join(runDir, name);
    if (!fs.existsSync(file)) continue;
    const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "");
    const kept = lines.filter((l) => {
      try {
        const s = (JSON.parse(l) as { step?: unknown }).step;
        return typeof s === "number" && s <= step;
      } catch {
        return false; // a line torn by a crash
      }
    });
    if (kept.length !== lines.length) {
      writeTextFileAtomic(file, kept.map((l) => l + "\n").join(""));
      dropped += lines.length - kept.length;
    }
  }
  const tb = path.join(runDir, "tb");
  if (fs.existsSync(tb)) {
    for (const f of fs.readdirSync(tb)) {
      if (f.includes("tfevents")) dropped += dropEventsAfter(path.join(tb, f), step, (tag) => tag === SESSION_START_TAG || tag === SESSION_END_TAG);
    }
  }
  return dropped;
}
