// The interface every metric sink implements, and a sink that fans out to several.

/** Receives scalar metrics once per logged step. */
export interface MetricSink {
  /**
   * Records `metrics` at `step`. `wallTime` is Unix time in seconds (fractional);
   * default: now.
   */
  log(step: number, metrics: Record<string, number>, wallTime?: number): void;
  /** Records a text (Markdown) at `step`, for sinks that show text; others leave it out. */
  text?(step: number, tag: string, markdown: string, wallTime?: number): void;
  /** Pushes buffered records to disk. */
  flush(): void;
  /** Flushes and releases the file; later `log` calls throw. */
  close(): void;
}

/** Forwards every call to each of `sinks`, in order. */
export class MultiSink implements MetricSink {
  readonly sinks: MetricSink[];
  constructor(sinks: MetricSink[]) {
    this.sinks = sinks;
  }
  log(step: number, metrics: Record<string, number>, wallTime: number = Date.now() / 1000): void {
    for (const s of this.sinks) s.log(step, metrics, wallTime);
  }
  text(step: number, tag: string, markdown: string, wallTime: number = Date.now() / 1000): void {
    for (const s of this.sinks) s.text?.(step, tag, markdown, wallTime);
  }
  flush(): void {
    for (const s of this.sinks) s.flush();
  }
  /** Closes every sink, even if one throws; rethrows the first error afterwards. */
  close(): void {
    let first: unknown;
    for (const s of this.sinks) {
      try {
        s.close();
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
  }
}

/** Checks a step/metrics pair before a sink writes it; errors name the sink and the key. */
export function checkLogArgs(sink: string, step: number, metrics: Record<string, number>): void {
  if (!Number.isSafeInteger(step)) throw new Error(`${sink}: step must be an integer, got ${step}`);
  if (metrics === null || typeof metrics !== "object") throw new Error(`${sink}: metrics must be an object of numbers at step ${step}`);
  for (const [k, v] of Object.entries(metrics)) {
    if (typeof v !== "number") throw new Error(`${sink}: metric "${k}" at step ${step} must be a number, got ${typeof v}`);
  }
}
