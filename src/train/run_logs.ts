// What a training run writes beside its checkpoints:
//   <kind>_config.yaml   the resolved config (with, after a resume that changed
//                        settings, a header line per change and the step it
//                        took effect from, kept across resumes)
//   metrics.jsonl, tb/   scalars (tb/ also: the config as HParams, sample
//                        completions as text, the session's end status)
//   completions.jsonl    GRPO's sample completions
// Opened only once the run's inputs have been checked (see run_dir.ts).
import fs from "node:fs";
import path from "node:path";
import { dumpConfig } from "../config/load.js";
import type { RunConfig } from "../config/run_config.js";
import { writeTextFileAtomic } from "../io/atomic.js";
import type { DataParallel } from "../torch/index.js";
import { JsonlSink } from "../io/sinks/jsonl.js";
import { MultiSink } from "../io/sinks/multi.js";
import { flattenHParams, type SessionStatus } from "../io/sinks/tb_summaries.js";
import { TensorBoardSink } from "../io/sinks/tensorboard.js";
import { type CompletionRecord, completionsMarkdown } from "./completion_samples.js";

const RESUME_NOTE = /^# (resumed .*)$/;

/** Writes <runDir>/<kind>_config.yaml: the resolved config, plus the notes of every resume that changed settings. */
export function writeRunConfig(runDir: string, cfg: RunConfig, kind: string, notes: string[] = []): string {
  const file = path.join(runDir, `${kind}_config.yaml`);
  const earlier = fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").flatMap((l) => RESUME_NOTE.exec(l)?.[1] ?? []) : [];
  const header = [`vlm-grpo ${kind}: resolved config`, ...earlier, ...notes].join("\n");
  writeTextFileAtomic(file, dumpConfig(cfg, { header }));
  return file;
}

/** What a trainer writes its logs through: RunLogs on rank 0, nothing on the other ranks. */
export type RunLogger = Pick<RunLogs, "log" | "completions" | "end" | "close">;

const NO_LOGS: RunLogger = { log() {}, completions() {}, end() {}, close() {} };

/** The run's logs, written by rank 0 only. */
export function openRunLogs(dp: DataParallel, runDir: string, cfg: RunConfig): RunLogger {
  return dp.isMain ? new RunLogs(runDir, cfg) : NO_LOGS;
}

export class RunLogs {
  readonly tb: TensorBoardSink;
  private readonly sink: MultiSink;
  private completionsFd: number | null = null;

  constructor(
    readonly runDir: string,
    cfg: RunConfig,
  ) {
    fs.mkdirSync(runDir, { recursive: true });
    this.tb = new TensorBoardSink(path.join(runDir, "tb"));
    this.sink = new MultiSink([new JsonlSink(path.join(runDir, "metrics.jsonl")), this.tb]);
    this.tb.hparams(flattenHParams(cfg));
  }

  log(step: number, metrics: Record<string, number>): void {
    this.sink.log(step, metrics);
  }

  /** Appends sample completions to completions.jsonl and shows them as a table in TensorBoard (tag "completions"). */
  completions(step: number, records: readonly CompletionRecord[]): void {
    if (records.length === 0) return;
    this.completionsFd ??= fs.openSync(path.join(this.runDir, "completions.jsonl"), "a");
    fs.writeSync(this.completionsFd, records.map((r) => JSON.stringify(r) + "\n").join(""));
    this.tb.text(step, "completions", completionsMarkdown(records));
  }

  /** Records how the run ended (the HParams dashboard shows it). */
  end(status: SessionStatus): void {
    this.tb.sessionEnd(status);
  }

  close(): void {
    if (this.completionsFd !== null) {
      fs.fsyncSync(this.completionsFd);
      fs.closeSync(this.completionsFd);
      this.completionsFd = null;
    }
    this.sink.close();
  }
}
