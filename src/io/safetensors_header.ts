// The safetensors header: the format's dtype table, and reading + validating
// a file's header so that every later tensor read is known to lie inside the
// file. Layout (https://github.com/huggingface/safetensors, "Format"):
//
//   u64 little-endian N | N bytes of UTF-8 JSON (may end in spaces) | data
//
// The JSON maps each tensor name to {dtype, shape, data_offsets: [begin, end]}
// with offsets relative to the start of the data; an optional "__metadata__"
// maps strings to strings. Tensors must tile the data exactly: no overlap,
// no gap, nothing after the last one.
import fs from "node:fs";

import { type DType } from "../torch/index.js";

/** Element size in bytes of each safetensors dtype whose elements are whole bytes. */
export const SAFETENSORS_DTYPE_SIZE: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** The safetensors dtypes this engine can load, and the engine dtype each becomes. */
const TO_DTYPE: Readonly<Record<string, DType>> = {
  BOOL: "bool",
  U8: "uint8",
  I8: "int8",
  I16: "int16",
  F16: "float16",
  BF16: "bfloat16",
  I32: "int32",
  F32: "float32",
  F64: "float64",
  I64: "int64",
};

const FROM_DTYPE: Readonly<Record<DType, string>> = Object.fromEntries(Object.entries(TO_DTYPE).map(([k, v]) => [v, k])) as Record<DType, string>;

/** The safetensors name ("F32", "BF16", ...) of an engine dtype. */
export function safetensorsDType(dtype: DType): string {
  const s = FROM_DTYPE[dtype];
  if (s === undefined) throw new Error(`dtype '${dtype}' has no safetensors equivalent`);
  return s;
}

/** The engine dtype of a safetensors dtype name, or null when libtorch 1.13 has none (U16, U32, U64, F8_*). */
export function dtypeOfSafetensors(name: string): DType | null {
  return TO_DTYPE[name] ?? null;
}

/** The safetensors reference implementation refuses headers above 100 MB; a larger one means a corrupt length. */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor's record in a validated header. */
export interface SafetensorsEntry {
  readonly name: string;
  /** The safetensors dtype name, e.g. "BF16". */
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte offset of the first element in the file. */
  readonly fileOffset: number;
  readonly byteLength: number;
}

/** A validated header: where each tensor's bytes are, plus the free-form metadata. */
export interface SafetensorsHeader {
  readonly path: string;
  /** The "__metadata__" map, or null when the file has none. */
  readonly metadata: Readonly<Record<string, string>> | null;
  /** Tensors in the order their bytes appear in the file. */
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  /** 8 + header length: where the data buffer starts. */
  readonly dataStart: number;
  readonly fileSize: number;
}

/** A file that breaks the safetensors format; the message names the file (and the tensor, when one is at fault). */
export class SafetensorsFormatError extends Error {
  constructor(
    readonly file: string,
    what: string,
    readonly tensor?: string,
  ) {
    super(`safetensors ${file}: ${tensor !== undefined ? `tensor '${tensor}': ` : ""}${what}`);
    this.name = "SafetensorsFormatError";
  }
}

const describe = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "an array" : typeof v);

function isNonNegInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Reads and validates the header of a safetensors file. Throws SafetensorsFormatError on any inconsistency. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const fd = fs.openSync(file, "r");
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new SafetensorsFormatError(file, "not a regular file");
    const fileSize = stat.size;
    if (fileSize < 8) {
      throw new SafetensorsFormatError(file, `file is ${fileSize} bytes, shorter than the 8-byte header length prefix (truncated, or not safetensors)`);
    }
    const prefix = Buffer.alloc(8);
    fs.readSync(fd, prefix, 0, 8, 0);
    const n = prefix.readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER_BYTES)) {
      throw new SafetensorsFormatError(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt length prefix, or not safetensors)`);
    }
    const headerLen = Number(n);
    if (8 + headerLen > fileSize) {
      throw new SafetensorsFormatError(file, `header length ${headerLen} runs past the end of the ${fileSize}-byte file (truncated)`);
    }
    const raw = Buffer.alloc(headerLen);
    let got = 0;
    while (got < headerLen) {
      const k = fs.readSync(fd, raw, got, headerLen - got, 8 + got);
      if (k === 0) throw new SafetensorsFormatError(file, `file ended while reading the ${headerLen}-byte header`);
      got += k;
    }
    return parseHeader(file, raw, fileSize);
  } finally {
    fs.closeSync(fd);
  }
}

/** Validates header bytes (already read) against the file's size. Exported for tests of in-memory headers. */
export function parseHeader(file: string, raw: Uint8Array, fileSize: number): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw new SafetensorsFormatError(file, "header is not valid UTF-8");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsFormatError(file, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new SafetensorsFormatError(file, `header must be a JSON object, got ${describe(json)}`);
  }
  const dataStart = 8 + raw.byteLength;
  const dataLength = fileSize - dataStart;
  let metadata: Record<string, string> | null = null;
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = parseMetadata(file, info);
      continue;
    }
    entries.push(parseEntry(file, name, info, dataStart, dataLength));
  }
  checkTiling(file, entries, dataStart, dataLength);
  return { path: file, metadata, entries: new Map(entries.map((e) => [e.name, e])), dataStart, fileSize };
}

function parseMetadata(file: string, info: unknown): Record<string, string> {
  if (typeof info !== "object" || info === null || Array.isArray(info)) {
    throw new SafetensorsFormatError(file, `"__metadata__" must be an object of strings, got ${describe(info)}`);
  }
  for (const [k, v] of Object.entries(info)) {
    if (typeof v !== "string") throw new SafetensorsFormatError(file, `"__metadata__" value for '${k}' must be a string, got ${describe(v)}`);
  }
  // fromEntries defines own properties, so even a "__proto__" key survives.
  return Object.fromEntries(Object.entries(info)) as Record<string, string>;
}

function parseEntry(file: string, name: string, info: unknown, dataStart: number, dataLength: number): SafetensorsEntry {
  const fail = (what: string): never => {
    throw new SafetensorsFormatError(file, what, name);
  };
  if (typeof info !== "object" || info === null || Array.isArray(info)) fail(`expected {dtype, shape, data_offsets}, got ${describe(info)}`);
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== "string") return fail(`"dtype" must be a string, got ${describe(dtype)}`);
  const size = SAFETENSORS_DTYPE_SIZE[dtype];
  if (size === undefined) fail(`unknown dtype '${dtype}'; expected one of ${Object.keys(SAFETENSORS_DTYPE_SIZE).join(", ")}`);
  if (!Array.isArray(shape) || !shape.every(isNonNegInt)) fail(`"shape" must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt) || offsets[0] > offsets[1]) {
    fail(`"data_offsets" must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`);
  }
  const dims = shape as number[];
  const [begin, end] = offsets as [number, number];
  const numel = dims.reduce((a, b) => a * b, 1);
  const need = numel * size;
  if (!Number.isSafeInteger(need)) fail(`shape [${dims.join(", ")}] is too large`);
  if (end - begin !== need) {
    fail(`shape [${dims.join(", ")}] of ${dtype} needs ${need} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  if (end > dataLength) {
    fail(`data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes after the header at byte ${dataStart}): the file is truncated`);
  }
  return { name, dtype, shape: dims, fileOffset: dataStart + begin, byteLength: need };
}

/** Checks that the tensors cover [0, dataLength) exactly once; sorts `entries` into file order. */
function checkTiling(file: string, entries: SafetensorsEntry[], dataStart: number, dataLength: number): void {
  entries.sort((a, b) => a.fileOffset - b.fileOffset || a.byteLength - b.byteLength);
  let pos = dataStart;
  let prev: SafetensorsEntry | undefined;
  for (const e of entries) {
    const rel = (x: number) => x - dataStart;
    if (e.fileOffset < pos) {
      throw new SafetensorsFormatError(file, `data_offsets [${rel(e.fileOffset)}, ${rel(e.fileOffset + e.byteLength)}] overlap tensor '${prev!.name}' (which ends at ${rel(pos)})`, e.name);
    }
    if (e.fileOffset > pos) {
      const after = prev ? `tensor '${prev.name}' ends` : "the data starts";
      throw new SafetensorsFormatError(file, `data_offsets begin at ${rel(e.fileOffset)} but ${after} at ${rel(pos)}: a gap of ${e.fileOffset - pos} bytes`, e.name);
    }
    pos = e.fileOffset + e.byteLength;
    prev = e;
  }
  if (pos !== dataStart + dataLength) {
    throw new SafetensorsFormatError(file, `${dataStart + dataLength - pos} bytes after the last tensor are not covered by any tensor (the data is ${dataLength} bytes)`);
  }
}

/**
 * Encodes a header: the 8-byte length prefix plus the JSON, padded with
 * spaces so the data starts at a multiple of 8 bytes (as the reference
 * writer does, so that every tensor stays aligned to its element size).
 * Entries keep the given order; JSON.stringify of one object would move
 * integer-like names ("0", "1") to the front.
 */
export function encodeHeader(
  metadata: Readonly<Record<string, string>> | null | undefined,
  entries: readonly { name: string; dtype: string; shape: readonly number[]; begin: number; end: number }[],
): Uint8Array {
  const parts: string[] = [];
  if (metadata) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  for (const e of entries) {
    parts.push(`${JSON.stringify(e.name)}:${JSON.stringify({ dtype: e.dtype, shape: e.shape, data_offsets: [e.begin, e.end] })}`);
  }
  const json = Buffer.from(`{${parts.join(",")}}`, "utf8");
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}
