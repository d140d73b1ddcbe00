// The few protobuf wire-format pieces TensorBoard's event files need, by hand:
// varints (int64 in two's complement), fixed64 doubles, fixed32 floats and
// length-delimited fields (strings, bytes, nested messages). A writer for the
// sink and a reader for tests and for reading runs back.
//
// Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.

/** Builds one message; nested messages are built with their own writer and added with `message`. */
export class ProtoWriter {
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
  /** An int64 / int32 / enum field (varint). */
  int64(field: number, v: number): this {
    this.key(field, 0);
    this.varint(BigInt(v));
    return this;
  }
  bool(field: number, v: boolean): this {
    return this.int64(field, v ? 1 : 0);
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
  /** A nested message (written even when empty: an empty sub-message is "set"). */
  message(field: number, m: ProtoWriter): this {
    return this.bytes(field, m.finish());
  }
  finish(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

/** One field as read from the wire: varints as bigint, fixed64/fixed32 as their raw 8/4 bytes, length-delimited as bytes. */
export interface ProtoField {
  field: number;
  wire: number;
  value: bigint | Uint8Array;
}

/** Reads fields one by one; errors name `where` (the file and record). */
export class ProtoReader {
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
    this.value(wire);
  }
  /** The value of a field whose key was just read. */
  value(wire: number): bigint | Uint8Array {
    if (wire === 0) return this.varint();
    if (wire === 1) return this.take(8);
    if (wire === 2) return this.take(Number(this.varint()));
    if (wire === 5) return this.take(4);
    throw new Error(`${this.where}: unsupported wire type ${wire}`);
  }
}

/** Every field of a message, in wire order. */
export function readFields(buf: Uint8Array, where = "message"): ProtoField[] {
  const r = new ProtoReader(buf, where);
  const out: ProtoField[] = [];
  while (!r.done) {
    const [field, wire] = r.key();
    out.push({ field, wire, value: r.value(wire) });
  }
  return out;
}

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
/** A fixed64 field's bytes as a double. */
export const asDouble = (b: Uint8Array): number => view(b).getFloat64(0, true);
/** A fixed32 field's bytes as a float. */
export const asFloat = (b: Uint8Array): number => view(b).getFloat32(0, true);
/** A length-delimited field's bytes as UTF-8 text. */
export const asString = (b: Uint8Array): string => Buffer.from(b).toString("utf8");
