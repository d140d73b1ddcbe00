// A progress display for long loops (training steps, evaluation batches).
//
// On a terminal it redraws one line in place:
//   train [#########...............]  38% 38/100 3.17 it/s elapsed 0:12 eta 0:20 loss=0.4123 reward=0.75
// Elsewhere (a log file, CI) it prints plain lines with the same figures,
// every `intervalMs` (default 10 s) or each time another `everyPercent`
// (default 10%) is crossed, whichever comes first, and a last line on done().
// Rate is the mean since start; ETA = remaining / rate.

/** The part of a writable stream Progress uses. */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  /** Terminal width; lines are cut to fit. */
  columns?: number;
}

/** Options of {@link Progress}. */
export interface ProgressOptions {
  /** Number of units expected; 0 or undefined = unknown (no percent, bar or ETA). */
  total?: number;
  /** Name shown first. Default "progress". */
  label?: string;
  /** Where to write. Default process.stderr. */
  stream?: ProgressStream;
  /** Redraw in place. Default stream.isTTY. */
  isTTY?: boolean;
  /** Minimum ms between outputs: default 100 on a TTY, 10000 otherwise. */
  intervalMs?: number;
  /** Non-TTY: also print whenever another this-many percent is done. Default 10 (0 = off). */
  everyPercent?: number;
  /** Unit name for the rate. Default "it". */
  unit?: string;
  /** Bar width in characters (TTY). Default 24. */
  barWidth?: number;
  /** Clock in ms. Default Date.now. */
  now?: () => number;
}

/** Formats seconds as m:ss or h:mm:ss; "--:--" when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const t = Math.round(seconds);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  const ss = String(sec).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** Formats a rate: "3.17 it/s" at >= 1 per second, else "4.20 s/it"; "-- it/s" when unknown. */
export function formatRate(perSecond: number, unit = "it"): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return `-- ${unit}/s`;
  return perSecond >= 1 ? `${perSecond.toFixed(2)} ${unit}/s` : `${(1 / perSecond).toFixed(2)} s/${unit}`;
}

/** Formats a custom field value: 4 significant digits, exponent form for very large or small numbers. */
export function formatField(v: number | string): string {
  if (typeof v === "string") return v;
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

/** What an outer tracker sees of a running Progress (see {@link setProgressContext}). */
export interface ProgressSnapshot {
  label: string;
  count: number;
  /** 0 when unknown. */
  total: number;
  elapsedSeconds: number;
}

let progressContext: ((p: ProgressSnapshot) => string) | null = null;

/**
 * Prefixes the text `fn` returns, in brackets, to every progress line drawn from now on
 * (e.g. a pipeline's stage and its total time left, around the per-stage
 * bars that SFT, GRPO and evaluation draw); null removes it. Process-wide,
 * because those loops create their Progress themselves.
 */
export function setProgressContext(fn: ((p: ProgressSnapshot) => string) | null): void {
  progressContext = fn;
}

/** A progress bar (TTY) or periodic progress lines (non-TTY). */
export class Progress {
  readonly total: number;
  readonly label: string;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly intervalMs: number;
  private readonly everyPercent: number;
  private readonly unit: string;
  private readonly barWidth: number;
  private readonly now: () => number;
  private readonly start: number;
  private last = -Infinity;
  private lastBucket = 0;
  private fields: Record<string, number | string> = {};
  private finished = false;
  /** Units done so far. */
  count = 0;

  constructor(opts: ProgressOptions = {}) {
    this.total = opts.total && opts.total > 0 ? opts.total : 0;
    this.label = opts.label ?? "progress";
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.isTTY ?? this.stream.isTTY === true;
    this.intervalMs = opts.intervalMs ?? (this.tty ? 100 : 10_000);
    this.everyPercent = opts.everyPercent ?? 10;
    this.unit = opts.unit ?? "it";
    this.barWidth = opts.barWidth ?? 24;
    this.now = opts.now ?? Date.now;
    this.start = this.now();
    this.last = this.start;
  }

  /** Adds `n` done units and merges `fields` (shown as key=value); redraws when due. */
  tick(n = 1, fields?: Record<string, number | string>): void {
    if (this.finished) return;
    this.count += n;
    if (fields) Object.assign(this.fields, fields);
    const t = this.now();
    if (this.tty) {
      if (t - this.last >= this.intervalMs || (this.total > 0 && this.count >= this.total)) this.render(t);
      return;
    }
    const bucket = this.total > 0 && this.everyPercent > 0 ? Math.floor((100 * this.count) / this.total / this.everyPercent) : 0;
    if (t - this.last >= this.intervalMs || bucket > this.lastBucket) this.render(t);
  }

  /** Writes the final figures (and ends the TTY line). Later calls do nothing. */
  done(fields?: Record<string, number | string>): void {
    if (this.finished) return;
    if (fields) Object.assign(this.fields, fields);
    this.finished = true;
    const t = this.now();
    if (this.tty) {
      this.stream.write(`\r${this.fit(this.line(t, true))}\x1b[K\n`);
    } else this.stream.write(`${this.line(t, false)} (done)\n`);
  }

  /** The figures at time `t` (ms): count, percent, rate, elapsed, ETA, fields. */
  line(t: number, bar: boolean): string {
    const elapsed = (t - this.start) / 1000;
    const rate = elapsed > 0 ? this.count / elapsed : NaN;
    const parts: string[] = [this.tty ? this.label : `${this.label}:`];
    if (this.total > 0) {
      const frac = Math.min(1, this.count / this.total);
      if (bar) {
        const full = Math.round(frac * this.barWidth);
        parts.push(`[${"#".repeat(full)}${".".repeat(this.barWidth - full)}]`);
      }
      const p = String(Math.floor(frac * 100));
      parts.push(`${bar ? p.padStart(3) : p}%`, `${this.count}/${this.total}`); // padded on a TTY so the line does not jitter
    } else parts.push(`${this.count}`);
    parts.push(formatRate(rate, this.unit), `elapsed ${formatDuration(elapsed)}`);
    if (this.total > 0) parts.push(`eta ${formatDuration(this.count > 0 ? Math.max(0, this.total - this.count) / rate : NaN)}`);
    for (const [k, v] of Object.entries(this.fields)) parts.push(`${k}=${formatField(v)}`);
    // The outer context goes first, so a TTY line cut to the terminal width keeps it.
    const outer = progressContext?.({ label: this.label, count: this.count, total: this.total, elapsedSeconds: elapsed });
    if (outer) parts.unshift(`[${outer}]`);
    return parts.join(" ");
  }

  private fit(s: string): string {
    const w = this.stream.columns;
    return w && w > 1 && s.length > w - 1 ? s.slice(0, w - 1) : s;
  }

  private render(t: number): void {
    this.last = t;
    if (this.total > 0 && this.everyPercent > 0) this.lastBucket = Math.floor((100 * this.count) / this.total / this.everyPercent);
    if (this.tty) this.stream.write(`\r${this.fit(this.line(t, true))}\x1b[K`);
    else this.stream.write(`${this.line(t, false)}\n`);
  }
}
