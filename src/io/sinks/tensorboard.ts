// TensorBoard event files, written without TensorFlow.
//
// File: a sequence of TFRecord frames
//   [uint64 LE length][uint32 LE masked crc32c(length bytes)][data][uint32 LE masked crc32c(data)]
// Each `data` is a serialized tensorflow.Event protobuf (core/util/event.proto):
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; TensorProto tensor = 8; SummaryMetadata metadata = 9; }
//   SummaryMetadata { PluginData plugin_data = 1; }   PluginData { string plugin_name = 1; bytes content = 2; }
// The first record carries file_version "brain.Event:2"; TensorBoard reads
// simple_value as a scalar. Other dashboards read a tensor whose metadata
// names their plugin (tb_summaries.ts builds the text and hparams ones). The
// protobuf is encoded by hand (protobuf.ts).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { writeFileAtomic } from "../atomic.js";
import { maskedCrc32c } from "./crc32c.js";
import { checkLogArgs, type MetricSink } from "./multi.js";
import { asDouble, asFloat, asString, ProtoReader, ProtoWriter } from "./protobuf.js";
import { hparamsEndValue, hparamsStartValue, type HParamValue, type SessionStatus, textValue } from "./tb_summaries.js";

/** The file_version string TensorBoard expects in the first event. */
export const FILE_VERSION = "brain.Event:2";

/** One scalar of a summary. */
export interface ScalarValue {
  tag: string;
  simple_value: number;
}

/** A summary value for a plugin's dashboard: a tensor plus the plugin's name and its own metadata bytes. */
export interface PluginValue {
  tag: string;
  plugin: { name: string; content: Uint8Array };
  /** A serialized TensorProto. */
  tensor: Uint8Array;
}

/** A summary value: a scalar (simple_value) or a plugin's tensor (plugin + tensor). */
export interface SummaryValue {
  tag: string;
  simple_value?: number;
  plugin?: { name: string; content: Uint8Array };
  tensor?: Uint8Array;
}

/** The fields of tensorflow.Event this module writes and reads. */
export interface TBEvent {
  wall_time: number;
  step: number;
  file_version?: string;
  values?: SummaryValue[];
}

function encodeValue(v: SummaryValue): ProtoWriter {
  const w = new ProtoWriter().string(1, v.tag);
  if (v.simple_value !== undefined) w.float(2, v.simple_value);
  if (v.tensor !== undefined) w.bytes(8, v.tensor);
  if (v.plugin !== undefined) {
    const pluginData = new ProtoWriter().string(1, v.plugin.name);
    if (v.plugin.content.length) pluginData.bytes(2, v.plugin.content);
    w.message(9, new ProtoWriter().message(1, pluginData));
  }
  return w;
}

/** Serializes a Summary message (its values in order). */
export function encodeSummary(values: readonly SummaryValue[]): Uint8Array {
  const summary = new ProtoWriter();
  for (const v of values) summary.message(1, encodeValue(v));
  return summary.finish();
}

/** Serializes an Event message (fields in field-number order, proto3 defaults omitted except wall_time). */
export function encodeEvent(ev: TBEvent): Uint8Array {
  const w = new ProtoWriter().double(1, ev.wall_time);
  if (ev.step !== 0) w.int64(2, ev.step);
  if (ev.file_version !== undefined) w.string(3, ev.file_version);
  if (ev.values !== undefined) w.bytes(5, encodeSummary(ev.values));
  return w.finish();
}

/** Wraps `data` in one TFRecord frame. */
export function frameRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

// ---- decoding (for tests and for reading runs back) ---------------------------

function decodePluginData(buf: Uint8Array, where: string): { name: string; content: Uint8Array } {
  const out: { name: string; content: Uint8Array } = { name: "", content: new Uint8Array(0) };
  const r = new ProtoReader(buf, where);
  while (!r.done) {
    const [f, w] = r.key();
    const v = r.value(w);
    if (f === 1 && w === 2) out.name = asString(v as Uint8Array);
    else if (f === 2 && w === 2) out.content = v as Uint8Array;
  }
  return out;
}

function decodeValue(buf: Uint8Array, where: string): SummaryValue {
  const r = new ProtoReader(buf, where);
  let tag = "";
  let simple: number | undefined;
  let tensor: Uint8Array | undefined;
  let plugin: { name: string; content: Uint8Array } | undefined;
  while (!r.done) {
    const [f, w] = r.key();
    const v = r.value(w);
    if (f === 1 && w === 2) tag = asString(v as Uint8Array);
    else if (f === 2 && w === 5) simple = asFloat(v as Uint8Array);
    else if (f === 8 && w === 2) tensor = v as Uint8Array;
    else if (f === 9 && w === 2) {
      const m = new ProtoReader(v as Uint8Array, `${where} metadata`);
      while (!m.done) {
        const [mf, mw] = m.key();
        const mv = m.value(mw);
        if (mf === 1 && mw === 2) plugin = decodePluginData(mv as Uint8Array, `${where} plugin_data`);
      }
    }
  }
  if (tensor !== undefined || plugin !== undefined) return { tag, ...(plugin ? { plugin } : {}), ...(tensor ? { tensor } : {}) };
  return { tag, simple_value: simple ?? NaN };
}

/** Parses an Event message; unknown fields are skipped. */
export function decodeEvent(data: Uint8Array, where = "event"): TBEvent {
  const r = new ProtoReader(data, where);
  const ev: TBEvent = { wall_time: 0, step: 0 };
  while (!r.done) {
    const [f, wire] = r.key();
    const v = r.value(wire);
    if (f === 1 && wire === 1) ev.wall_time = asDouble(v as Uint8Array);
    else if (f === 2 && wire === 0) ev.step = Number(BigInt.asIntN(64, v as bigint));
    else if (f === 3 && wire === 2) ev.file_version = asString(v as Uint8Array);
    else if (f === 5 && wire === 2) {
      const s = new ProtoReader(v as Uint8Array, `${where} summary`);
      ev.values ??= [];
      while (!s.done) {
        const [sf, sw] = s.key();
        const sv = s.value(sw);
        if (sf === 1 && sw === 2) ev.values.push(decodeValue(sv as Uint8Array, `${where} summary value`));
      }
    }
  }
  return ev;
}

/**
 * Reads every record of a TFRecord file, checking both CRCs of each frame.
 * Errors name the file and the byte offset of the bad frame.
 */
export function readRecords(file: string): Uint8Array[] {
  const buf = fs.readFileSync(file);
  const out: Uint8Array[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 12 > buf.length) throw new Error(`${file}: truncated record header at byte ${pos}`);
    const lenBytes = buf.subarray(pos, pos + 8);
    if (buf.readUInt32LE(pos + 8) !== maskedCrc32c(lenBytes)) throw new Error(`${file}: length CRC mismatch at byte ${pos}`);
    const len = Number(buf.readBigUInt64LE(pos));
    const end = pos + 12 + len + 4;
    if (end > buf.length) throw new Error(`${file}: truncated record at byte ${pos} (length ${len})`);
    const data = buf.subarray(pos + 12, pos + 12 + len);
    if (buf.readUInt32LE(pos + 12 + len) !== maskedCrc32c(data)) throw new Error(`${file}: data CRC mismatch in record at byte ${pos}`);
    out.push(data);
    pos = end;
  }
  return out;
}

/** Reads and decodes every Event of a TensorBoard event file. */
export function readEventFile(file: string): TBEvent[] {
  return readRecords(file).map((r, i) => decodeEvent(r, `${file} record ${i}`));
}

/**
 * Rewrites an event file without the events logged after `step` (a resumed
 * run logs those steps again) and without the values whose tag `dropTag`
 * matches (e.g. the hparams summaries a resumed run writes anew); the
 * file_version record stays. Atomic: a crash leaves the old file or the new
 * one. Returns the number of events dropped or changed.
 */
export function dropEventsAfter(file: string, step: number, dropTag: (tag: string) => boolean = () => false): number {
  const records = readRecords(file);
  let changed = 0;
  const kept: Uint8Array[] = [];
  records.forEach((r, i) => {
    const ev = decodeEvent(r, `${file} record ${i}`);
    if (ev.step > step) {
      changed++;
      return;
    }
    const values = ev.values?.filter((v) => !dropTag(v.tag));
    if (ev.values === undefined || values!.length === ev.values.length) kept.push(r);
    else {
      changed++;
      if (values!.length) kept.push(encodeEvent({ ...ev, values }));
    }
  });
  if (changed === 0) return 0;
  writeFileAtomic(file, (fd) => {
    for (const r of kept) fs.writeSync(fd, frameRecord(r));
  });
  return changed;
}

// ---- the sink ---------------------------------------------------------------

/** Options of {@link TensorBoardSink}. */
export interface TensorBoardSinkOptions {
  /** Host name in the file name. Default: os.hostname(). */
  hostname?: string;
  /** Clock in milliseconds, for the file name and default wall times. Default: Date.now. */
  now?: () => number;
}

/**
 * Writes scalars to `<logDir>/events.out.tfevents.<unix seconds>.<host>`
 * (a `.<pid>.<n>` suffix is added if that name is taken), readable by
 * TensorBoard. Each `log` call writes one Event whose summary holds one value
 * per metric (tag = the metric's name, e.g. "train/loss"); `text` and
 * `hparams` write the Text and HParams dashboards' summaries.
 */
export class TensorBoardSink implements MetricSink {
  readonly path: string;
  private fd: number | null;
  private readonly now: () => number;

  constructor(logDir: string, opts: TensorBoardSinkOptions = {}) {
    this.now = opts.now ?? Date.now;
    fs.mkdirSync(logDir, { recursive: true });
    const t = this.now();
    const base = path.join(logDir, `events.out.tfevents.${Math.floor(t / 1000)}.${opts.hostname ?? os.hostname()}`);
    let file = base;
    let fd: number | undefined;
    for (let n = 0; fd === undefined; n++) {
      try {
        fd = fs.openSync(file, "wx");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST" || n > 1000) throw e;
        file = `${base}.${process.pid}.${n + 1}`;
      }
    }
    this.fd = fd;
    this.path = file;
    this.write({ wall_time: t / 1000, step: 0, file_version: FILE_VERSION });
  }

  private write(ev: TBEvent): void {
    if (this.fd === null) throw new Error(`TensorBoardSink(${this.path}): write after close`);
    fs.writeSync(this.fd, frameRecord(encodeEvent(ev)));
  }

  log(step: number, metrics: Record<string, number>, wallTime: number = this.now() / 1000): void {
    checkLogArgs(`TensorBoardSink(${this.path})`, step, metrics);
    const values = Object.entries(metrics).map(([tag, simple_value]) => ({ tag, simple_value }));
    if (values.length > 0) this.write({ wall_time: wallTime, step, values });
  }

  /** A text summary (TensorBoard's Text dashboard renders it as Markdown). */
  text(step: number, tag: string, markdown: string, wallTime: number = this.now() / 1000): void {
    if (!Number.isSafeInteger(step)) throw new Error(`TensorBoardSink(${this.path}): step must be an integer, got ${step}`);
    this.write({ wall_time: wallTime, step, values: [textValue(tag, markdown)] });
  }

  /** The run's hyperparameters for the HParams dashboard (its metrics are the run's scalars). */
  hparams(values: Record<string, HParamValue>, startTimeSecs: number = this.now() / 1000): void {
    this.write({ wall_time: startTimeSecs, step: 0, values: [hparamsStartValue(values, startTimeSecs)] });
  }

  /** Marks the HParams session finished (success or failure). */
  sessionEnd(status: SessionStatus, endTimeSecs: number = this.now() / 1000): void {
    this.write({ wall_time: endTimeSecs, step: 0, values: [hparamsEndValue(status, endTimeSecs)] });
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
