// TensorBoard event files, written without TensorFlow.
//
// File: a sequence of TFRecord frames
//   [uint64 LE length][uint32 LE masked crc32c(length bytes)][data][uint32 LE masked crc32c(data)]
// Each `data` is a serialized tensorflow.Event protobuf (core/util/event.proto):
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; }
// The first record carries file_version "brain.Event:2"; TensorBoard reads
// simple_value as a scalar. The protobuf is encoded by hand below (varints,
// length-delimited fields, fixed64 double, fixed32 float).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { maskedCrc32c } from "./crc32c.js";
import { checkLogArgs, type MetricSink } from "./multi.js";

/** The file_version string TensorBoard expects in the first event. */
export const FILE_VERSION = "brain.Event:2";

// ---- protobuf encoding ------------------------------------------------------

/** Minimal protobuf writer: just the wire types the Event message needs. */
class ProtoWriter {
  private parts: Uint8Array[] = [];
  private varint(v: bigint): void {
    // int64 fields encode negatives as their 64-bit two's complement (10 bytes).
    let x = BigInt.asUintN(64, v);
    const bytes: number[] = [];
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) b |= 0x80;
      bytes.push(b);
    } while (x !== 0n);
    this.parts.push(Uint8Array.from(bytes));
  }
  private key(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }
  int64(field: number, v: number): this {
    this.key(field, 0);
    this.varint(BigInt(v));
    return this;
  }
  double(field: number, v: number): this {
    this.key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.parts.push(b);
    return this;
  }
  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.parts.push(b);
    return this;
  }
  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2);
    this.varint(BigInt(data.length));
    this.parts.push(data);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, Buffer.from(s, "utf8"));
  }
  finish(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

/** One scalar of a summary. */
export interface ScalarValue {
  tag: string;
  simple_value: number;
}

/** The fields of tensorflow.Event this module writes and reads. */
export interface TBEvent {
  wall_time: number;
  step: number;
  file_version?: string;
  values?: ScalarValue[];
}

/** Serializes an Event message (fields in field-number order, proto3 defaults omitted except wall_time). */
export function encodeEvent(ev: TBEvent): Uint8Array {
  const w = new ProtoWriter().double(1, ev.wall_time);
  if (ev.step !== 0) w.int64(2, ev.step);
  if (ev.file_version !== undefined) w.string(3, ev.file_version);
  if (ev.values !== undefined) {
    const summary = new ProtoWriter();
    for (const v of ev.values) summary.bytes(1, new ProtoWriter().string(1, v.tag).float(2, v.simple_value).finish());
    w.bytes(5, summary.finish());
  }
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

// ---- protobuf decoding (for tests and for reading runs back) -----------------

class ProtoReader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly where: string,
  ) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error(`${this.where}: truncated varint`);
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error(`${this.where}: varint longer than 10 bytes`);
    }
  }
  take(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new Error(`${this.where}: field runs past the end of the message`);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** Reads a field key; returns [fieldNumber, wireType]. */
  key(): [number, number] {
    const k = Number(this.varint());
    return [k >>> 3, k & 7];
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.take(8);
    else if (wire === 2) this.take(Number(this.varint()));
    else if (wire === 5) this.take(4);
    else throw new Error(`${this.where}: unsupported wire type ${wire}`);
  }
}

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Parses an Event message; unknown fields are skipped. */
export function decodeEvent(data: Uint8Array, where = "event"): TBEvent {
  const r = new ProtoReader(data, where);
  const ev: TBEvent = { wall_time: 0, step: 0 };
  while (!r.done) {
    const [f, wire] = r.key();
    if (f === 1 && wire === 1) ev.wall_time = view(r.take(8)).getFloat64(0, true);
    else if (f === 2 && wire === 0) ev.step = Number(BigInt.asIntN(64, r.varint()));
    else if (f === 3 && wire === 2) ev.file_version = Buffer.from(r.take(Number(r.varint()))).toString("utf8");
    else if (f === 5 && wire === 2) {
      const s = new ProtoReader(r.take(Number(r.varint())), `${where} summary`);
      ev.values ??= [];
      while (!s.done) {
        const [sf, sw] = s.key();
        if (sf !== 1 || sw !== 2) {
          s.skip(sw);
          continue;
        }
        const v = new ProtoReader(s.take(Number(s.varint())), `${where} summary value`);
        const val: ScalarValue = { tag: "", simple_value: NaN };
        while (!v.done) {
          const [vf, vw] = v.key();
          if (vf === 1 && vw === 2) val.tag = Buffer.from(v.take(Number(v.varint()))).toString("utf8");
          else if (vf === 2 && vw === 5) val.simple_value = view(v.take(4)).getFloat32(0, true);
          else v.skip(vw);
        }
        ev.values.push(val);
      }
    } else r.skip(wire);
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
 * per metric (tag = the metric's name, e.g. "train/loss").
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
