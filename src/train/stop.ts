// Stopping a training run on SIGINT / SIGTERM, and the exit code it ends with.
//
// First signal: the loop finishes its step, saves a checkpoint and returns;
// the process then exits 128 + the signal's number (130 for SIGINT, 143 for
// SIGTERM), as a shell reports a process a signal ended, so scripts and
// schedulers can tell an interrupted run from a finished one. A second
// signal, or the step and save not finishing within the grace period
// (stop_timeout_s), exits at once with that code: the last complete
// checkpoint stays, an unfinished save leaves only a temporary folder that
// the next start removes. The training loop yields to the event loop once
// per step (torch/event_loop.ts), which is where these handlers run; user
// reward code runs in worker threads, so it cannot block them.
import fs from "node:fs";
import path from "node:path";

export type StopSignal = "SIGINT" | "SIGTERM";

/** Exit status of a run ended by each signal (128 + signal number). */
export const SIGNAL_EXIT_CODES: Readonly<Record<StopSignal, number>> = Object.freeze({ SIGINT: 130, SIGTERM: 143 });

export interface StopRequestOptions {
  /** Seconds the step and its checkpoint get after the first signal before the process exits anyway. */
  graceSeconds: number;
  /** Names the run in messages ("grpo", "sft"). */
  label: string;
  /** Where messages go. Default process.stderr. */
  write?: (text: string) => void;
  /** How to exit now. Default process.exit. */
  exit?: (code: number) => void;
}

/** Watches SIGINT and SIGTERM while a training loop runs (dispose() when the loop ends). */
export class StopRequest {
  /** The first signal received, or null. */
  signal: StopSignal | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly write: (text: string) => void;
  private readonly exit: (code: number) => void;
  private readonly handler = (sig: NodeJS.Signals) => this.onSignal(sig as StopSignal);

  constructor(private readonly o: StopRequestOptions) {
    if (!(o.graceSeconds > 0)) throw new Error(`StopRequest: graceSeconds must be positive, got ${o.graceSeconds}`);
    this.write = o.write ?? ((t) => process.stderr.write(t));
    this.exit = o.exit ?? ((code) => process.exit(code));
    process.on("SIGINT", this.handler);
    process.on("SIGTERM", this.handler);
  }

  /** True once a signal asked the run to stop. */
  get requested(): boolean {
    return this.signal !== null;
  }

  private onSignal(sig: StopSignal): void {
    const code = SIGNAL_EXIT_CODES[sig] ?? 1;
    if (this.signal !== null) {
      this.write(`\n${this.o.label}: ${sig} again: exiting now (exit code ${code}); the last complete checkpoint stays\n`);
      this.exit(code);
      return;
    }
    this.signal = sig;
    this.write(`\n${this.o.label}: ${sig}: finishing the current step, then saving a checkpoint (exit code ${code}); a second signal, or ${this.o.graceSeconds} s without finishing (stop_timeout_s), exits at once\n`);
    this.timer = setTimeout(() => {
      this.write(`\n${this.o.label}: the step and its checkpoint did not finish within ${this.o.graceSeconds} s of ${sig} (stop_timeout_s); exiting now (exit code ${code}); the last complete checkpoint stays\n`);
      this.exit(code);
    }, this.o.graceSeconds * 1000);
    // The grace timer must not keep a finished process alive.
    this.timer.unref();
  }

  dispose(): void {
    process.off("SIGINT", this.handler);
    process.off("SIGTERM", this.handler);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** What a run's exit code depends on. */
export interface RunOutcome {
  /** The final model's folder, or null when the run stopped before it. */
  finalModelDir: string | null;
  /** The signal that stopped the run, if any. */
  interruptedBy: StopSignal | null;
}

/**
 * The process exit code of a training command: 0 only for a run that wrote
 * its final model (config.json present) and was not interrupted; 130 / 143
 * for a run a signal stopped (its checkpoint saved); 1 for anything else.
 * `why` receives a line for the user when the code is not 0.
 */
export function runExitCode(r: RunOutcome, why: (line: string) => void = (l) => console.error(l)): number {
  if (r.interruptedBy) return SIGNAL_EXIT_CODES[r.interruptedBy];
  if (!r.finalModelDir) {
    why("the run stopped before writing its final model");
    return 1;
  }
  if (!fs.existsSync(path.join(r.finalModelDir, "config.json"))) {
    why(`the final model folder ${r.finalModelDir} is incomplete (no config.json)`);
    return 1;
  }
  return 0;
}
