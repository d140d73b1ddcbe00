// One safetensors file: lazy reading (one tensor at a time, each read from
// the file straight into libtorch storage, with no JS buffer in between) and
// atomic writing (tensor bytes go from libtorch storage to the fd).
import fs from "node:fs";
import os from "node:os";

import { type Device, type DType, dispose, ELEMENT_SIZE, isFloatingDType, readTensorFromFile, Tensor, writeTensorToFd } from "../torch/index.js";
import { writeFileAtomic } from "./atomic.js";
import { dtypeOfSafetensors, encodeHeader, SAFETENSORS_DTYPE_SIZE, readSafetensorsHeader, safetensorsDType, type SafetensorsEntry, type SafetensorsHeader } from "./safetensors_header.js";

// The format is little-endian and the tensors go byte for byte into memory.
if (os.endianness() !== "LE") throw new Error("safetensors I/O assumes a little-endian host");

/** The safetensors dtypes the engine can load, for error messages. */
const LOADABLE = Object.keys(SAFETENSORS_DTYPE_SIZE).filter((n) => dtypeOfSafetensors(n) !== null).join(", ");

/** Tensors to save: a Map or a plain object from name to tensor. */
export type TensorDict = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

/** How to read one tensor. */
export interface ReadOptions {
  /**
   * Cast floating-point tensors to this (floating) dtype as they are read;
   * integer and bool tensors keep their stored dtype (as transformers does
   * with torch_dtype, so integer buffers survive a bf16 load).
   */
  dtype?: DType;
  /** Device to place tensors on (read on the CPU, then moved). Default "cpu". */
  device?: Device;
}

/** Which tensors to load, and how. */
export interface LoadOptions extends ReadOptions {
  /** Names to load (each must exist), or a predicate over names. Default: all. */
  names?: readonly string[] | ((name: string) => boolean);
}

/** Picks the names to load, in file order for a predicate and in the given order for a list. */
export function selectNames(all: readonly string[], names: LoadOptions["names"], where: string): string[] {
  if (names === undefined) return [...all];
  if (typeof names === "function") return all.filter(names);
  const have = new Set(all);
  const missing = names.filter((n) => !have.has(n));
  if (missing.length > 0) {
    const shown = all.slice(0, 8).join(", ") + (all.length > 8 ? `, ... (${all.length} in all)` : "");
    throw new Error(`${where}: no tensor named ${missing.map((n) => `'${n}'`).join(", ")}; it holds: ${shown || "(no tensors)"}`);
  }
  return [...names];
}

function checkReadOptions(opts: ReadOptions): void {
  if (opts.dtype !== undefined && !isFloatingDType(opts.dtype)) {
    throw new Error(`safetensors load: dtype '${opts.dtype}' is not floating point; the dtype option casts floating-point tensors only`);
  }
}

/**
 * A safetensors file opened for lazy reading: the header is read and
 * validated once; each `get` reads one tensor's bytes straight into a new
 * libtorch tensor. No file descriptor is held between reads, so the file is
 * checked (inode, size, mtime) before each read to catch it being replaced.
 */
export class SafetensorsFile {
  private readonly stamp: string;

  private constructor(readonly header: SafetensorsHeader) {
    this.stamp = SafetensorsFile.stampOf(header.path);
  }

  /** Opens a file and validates its header. */
  static open(file: string): SafetensorsFile {
    return new SafetensorsFile(readSafetensorsHeader(file));
  }

  private static stampOf(file: string): string {
    const s = fs.statSync(file, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}`;
  }

  get path(): string {
    return this.header.path;
  }
  /** Tensor names in file order. */
  get names(): string[] {
    return [...this.header.entries.keys()];
  }
  get metadata(): Readonly<Record<string, string>> | null {
    return this.header.metadata;
  }
  has(name: string): boolean {
    return this.header.entries.has(name);
  }
  /** The header record of one tensor (dtype, shape, where its bytes are). */
  entry(name: string): SafetensorsEntry {
    const e = this.header.entries.get(name);
    if (!e) selectNames(this.names, [name], `safetensors ${this.path}`);
    return e!;
  }

  /** Reads one tensor (one copy from the file into libtorch, plus one for a cast or device move). */
  get(name: string, opts: ReadOptions = {}): Tensor {
    checkReadOptions(opts);
    const e = this.entry(name);
    const dtype = dtypeOfSafetensors(e.dtype);
    if (dtype === null) {
      throw new Error(`safetensors ${this.path}: tensor '${name}': dtype ${e.dtype} cannot be loaded; the engine has no such dtype (it loads ${LOADABLE})`);
    }
    if (SafetensorsFile.stampOf(this.path) !== this.stamp) {
      throw new Error(`safetensors ${this.path}: the file changed since its header was read; open it again`);
    }
    const t = readTensorFromFile(this.path, e.fileOffset, dtype, e.shape);
    const cast = opts.dtype !== undefined && isFloatingDType(dtype) && opts.dtype !== dtype ? opts.dtype : undefined;
    const device = opts.device !== undefined && opts.device !== "cpu" ? opts.device : undefined;
    if (cast === undefined && device === undefined) return t;
    try {
      return device === undefined ? t.to(cast!) : t.to(device, { dtype: cast });
    } finally {
      t.dispose();
    }
  }

  /**
   * Yields [name, tensor] one at a time, so a caller can copy each into a
   * model and dispose it before the next is read (peak memory: one tensor).
   */
  *tensors(opts: LoadOptions = {}): Generator<[string, Tensor]> {
    checkReadOptions(opts);
    for (const name of selectNames(this.names, opts.names, `safetensors ${this.path}`)) yield [name, this.get(name, opts)];
  }

  /** Loads the selected tensors into a Map (disposing what was read if one fails). */
  load(opts: LoadOptions = {}): Map<string, Tensor> {
    return collectTensors(this.tensors(opts));
  }
}

/** Reads tensors from a safetensors file into a Map (see SafetensorsFile for one-at-a-time reading). */
export function loadSafetensors(file: string, opts: LoadOptions = {}): Map<string, Tensor> {
  return SafetensorsFile.open(file).load(opts);
}

/** Entries of a TensorDict, checked: non-empty names other than __metadata__, live tensors. */
export function checkedEntries(file: string, tensors: TensorDict): [string, Tensor][] {
  const list: [string, Tensor][] = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, Tensor>);
  for (const [name, t] of list) {
    if (typeof name !== "string" || name.length === 0) throw new Error(`saveSafetensors ${file}: tensor names must be non-empty strings, got ${JSON.stringify(name)}`);
    if (name === "__metadata__") throw new Error(`saveSafetensors ${file}: '__metadata__' is reserved for metadata and cannot name a tensor`);
    if (!(t instanceof Tensor)) throw new Error(`saveSafetensors ${file}: tensor '${name}': expected a Tensor, got ${t === null ? "null" : typeof t}`);
    if (t.isDisposed) throw new Error(`saveSafetensors ${file}: tensor '${name}' was disposed`);
  }
  return list;
}

function checkMetadata(file: string, metadata: Readonly<Record<string, string>> | undefined): void {
  if (metadata === undefined) return;
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") throw new Error(`saveSafetensors ${file}: metadata '${k}' must be a string, got ${typeof v}`);
  }
}

/** Total bytes of the tensors' elements (what an index's total_size counts). */
export function tensorBytes(t: Tensor): number {
  return t.numel * ELEMENT_SIZE[t.dtype];
}

/**
 * Writes tensors to a safetensors file atomically (temporary file, fsync,
 * rename): `file` holds either its old content or the complete new one.
 * Tensors may be on any device and non-contiguous; their bytes go from
 * libtorch to the file without a JS copy. The layout is deterministic: data
 * sorted by element size (largest first) then name, as the reference writer
 * does, so each tensor starts at a multiple of its element size.
 */
export function saveSafetensors(file: string, tensors: TensorDict, metadata?: Readonly<Record<string, string>>): void {
  checkMetadata(file, metadata);
  const list = checkedEntries(file, tensors).map(([name, t]) => ({ name, t, dtype: safetensorsDType(t.dtype), shape: t.shape, bytes: tensorBytes(t) }));
  const size = (d: DType) => ELEMENT_SIZE[d];
  list.sort((a, b) => size(b.t.dtype) - size(a.t.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let pos = 0;
  const entries = list.map((e) => {
    const begin = pos;
    pos += e.bytes;
    return { name: e.name, dtype: e.dtype, shape: e.shape, begin, end: pos };
  });
  const header = encodeHeader(metadata, entries);
  writeFileAtomic(file, (fd) => {
    let done = 0;
    while (done < header.byteLength) done += fs.writeSync(fd, header, done, header.byteLength - done);
    for (const e of list) {
      const n = writeTensorToFd(fd, e.t);
      if (n !== e.bytes) throw new Error(`saveSafetensors ${file}: tensor '${e.name}': wrote ${n} bytes, expected ${e.bytes}`);
    }
  });
}

/** Collects (name, tensor) pairs into a Map; if the iteration throws, disposes what was read and rethrows. */
export function collectTensors(entries: Iterable<[string, Tensor]>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  try {
    for (const [name, t] of entries) out.set(name, t);
  } catch (e) {
    dispose(out);
    throw e;
  }
  return out;
}
