// Metrics as JSON Lines: one object per logged step, appended, so a crashed
// or resumed run keeps its history and `jq`/pandas read it directly.
// Line format: {"step": 10, "time": 1732451234.567, "metrics": {"loss": 0.41, ...}}
// `time` is Unix seconds. JSON has no NaN/Infinity: those metric values are
// written as the strings "NaN", "Infinity", "-Infinity" and read back as numbers.
import fs from "node:fs";
import path from "node:path";
import { checkLogArgs, type MetricSink } from "./multi.js";

/** One line of a metrics JSONL file. */
export interface JsonlRecord {
  step: number;
  /** Unix time in seconds. */
  time: number;
  metrics: Record<string, number>;
}

const encodeNumber = (v: number): number | string => (Number.isFinite(v) ? v : String(v));

/** Appends one JSON object per `log` call to `file` (created with its folder if missing). */
export class JsonlSink implements MetricSink {
  readonly path: string;
  private fd: number | null;

  constructor(file: string) {
    this.path = file;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, "a");
  }

  log(step: number, metrics: Record<string, number>, wallTime: number = Date.now() / 1000): void {
    if (this.fd === null) throw new Error(`JsonlSink(${this.path}): log after close`);
    checkLogArgs(`JsonlSink(${this.path})`, step, metrics);
    const m: Record<string, number | string> = {};
    for (const [k, v] of Object.entries(metrics)) m[k] = encodeNumber(v);
    fs.writeSync(this.fd, JSON.stringify({ step, time: wallTime, metrics: m }) + "\n");
  }

  flush(): void {
    if (this.fd !== null) fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === null) return;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * Reads a metrics JSONL file back. A last line cut short by a crash is
 * skipped; any other malformed line is an error naming file and line.
 */
export function readJsonl(file: string): JsonlRecord[] {
  const lines = fs.readFileSync(file, "utf8").split("\n");
  const out: JsonlRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let obj: { step?: unknown; time?: unknown; metrics?: Record<string, unknown> };
    try {
      obj = JSON.parse(line);
    } catch (e) {
      if (i === lines.length - 1) return; // torn final line (no trailing newline)
      throw new Error(`${file}:${i + 1}: not valid JSON: ${(e as Error).message}`);
    }
    if (typeof obj.step !== "number" || typeof obj.metrics !== "object" || obj.metrics === null) {
      throw new Error(`${file}:${i + 1}: expected {"step": number, "time": number, "metrics": {...}}`);
    }
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(obj.metrics)) metrics[k] = typeof v === "string" ? Number(v) : (v as number);
    out.push({ step: obj.step, time: typeof obj.time === "number" ? obj.time : NaN, metrics });
  });
  return out;
}
