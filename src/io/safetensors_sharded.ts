// Hugging Face checkpoint folders: one `model.safetensors`, or shards
// `model-00001-of-00003.safetensors` ... plus `model.safetensors.index.json`
// ({"metadata": {"total_size": N}, "weight_map": {name: shard file}}), the
// layout transformers' save_pretrained writes and from_pretrained reads.
import fs from "node:fs";
import path from "node:path";

import type { Tensor } from "../torch/index.js";
import { writeTextFileAtomic } from "./atomic.js";
import { checkedEntries, collectTensors, type LoadOptions, type ReadOptions, SafetensorsFile, saveSafetensors, selectNames, type TensorDict, tensorBytes } from "./safetensors_file.js";

/** transformers' default max_shard_size ("5GB", decimal). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

export interface FolderOptions {
  /** File name stem: "model" gives model.safetensors / model.safetensors.index.json. Default "model". */
  prefix?: string;
}

export interface ShardedSaveOptions extends FolderOptions {
  /** A new shard starts when adding a tensor would pass this many data bytes (a larger tensor gets a shard alone). */
  maxShardBytes?: number;
  /**
   * Metadata for every shard. Default {format: "pt"}: transformers refuses a
   * checkpoint whose metadata lacks a known "format".
   */
  metadata?: Readonly<Record<string, string>>;
}

function checkPrefix(prefix: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(prefix)) throw new Error(`safetensors folder: prefix '${prefix}' must be a plain file name stem ([A-Za-z0-9_.-])`);
  return prefix;
}

const singleName = (prefix: string) => `${prefix}.safetensors`;
const indexName = (prefix: string) => `${prefix}.safetensors.index.json`;
const shardName = (prefix: string, i: number, n: number) => `${prefix}-${String(i).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;

/**
 * The tensors of a checkpoint folder opened for lazy reading. Opening reads
 * and cross-checks every shard's header against the index (headers only, so
 * it is cheap); tensors are read one at a time on demand.
 */
export class SafetensorsFolder {
  private constructor(
    readonly dir: string,
    /** The index file, or null for a single-file checkpoint. */
    readonly indexFile: string | null,
    private readonly shardOf: ReadonlyMap<string, SafetensorsFile>,
    /** The index's "metadata" (total_size ...), or the single file's metadata. */
    readonly metadata: Readonly<Record<string, unknown>> | null,
  ) {}

  /**
   * Opens `<prefix>.safetensors` if present (transformers looks for it
   * first), else `<prefix>.safetensors.index.json` and its shards.
   */
  static open(dir: string, opts: FolderOptions = {}): SafetensorsFolder {
    const prefix = checkPrefix(opts.prefix ?? "model");
    const single = path.join(dir, singleName(prefix));
    if (fs.existsSync(single)) {
      const f = SafetensorsFile.open(single);
      return new SafetensorsFolder(dir, null, new Map(f.names.map((n) => [n, f])), f.metadata);
    }
    const index = path.join(dir, indexName(prefix));
    if (!fs.existsSync(index)) throw new Error(`safetensors folder ${dir}: found neither ${singleName(prefix)} nor ${indexName(prefix)}`);
    const { weightMap, metadata } = readIndex(index);
    return new SafetensorsFolder(dir, index, openShards(dir, index, weightMap), metadata);
  }

  /** Tensor names, shard by shard in file order. */
  get names(): string[] {
    return [...this.shardOf.keys()];
  }
  /** The shard files in use (one for a single-file checkpoint). */
  get files(): string[] {
    return [...new Set([...this.shardOf.values()].map((f) => f.path))];
  }
  has(name: string): boolean {
    return this.shardOf.has(name);
  }
  /** The open shard holding a tensor (for its header entry: dtype, shape). */
  fileOf(name: string): SafetensorsFile {
    const f = this.shardOf.get(name);
    if (!f) selectNames(this.names, [name], `safetensors folder ${this.dir}`);
    return f!;
  }
  get(name: string, opts: ReadOptions = {}): Tensor {
    return this.fileOf(name).get(name, opts);
  }
  /** Yields [name, tensor] one at a time (see SafetensorsFile.tensors). */
  *tensors(opts: LoadOptions = {}): Generator<[string, Tensor]> {
    for (const name of selectNames(this.names, opts.names, `safetensors folder ${this.dir}`)) yield [name, this.get(name, opts)];
  }
  /** Loads the selected tensors into a Map (disposing what was read if one fails). */
  load(opts: LoadOptions = {}): Map<string, Tensor> {
    return collectTensors(this.tensors(opts));
  }
}

/** Parses and shape-checks an index file; returns its weight map (name -> shard file name). */
function readIndex(index: string): { weightMap: Map<string, string>; metadata: Record<string, unknown> | null } {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(index, "utf8"));
  } catch (e) {
    throw new Error(`safetensors index ${index}: not valid JSON: ${(e as Error).message}`);
  }
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObj(json)) throw new Error(`safetensors index ${index}: expected a JSON object with "weight_map"`);
  if (!isObj(json.weight_map)) throw new Error(`safetensors index ${index}: "weight_map" must be an object from tensor name to shard file`);
  if (json.metadata !== undefined && !isObj(json.metadata)) throw new Error(`safetensors index ${index}: "metadata" must be an object`);
  const weightMap = new Map<string, string>();
  for (const [name, file] of Object.entries(json.weight_map)) {
    // Shard names are plain file names in the same folder; anything else could read outside it.
    if (typeof file !== "string" || file.length === 0 || file.includes("/") || file.includes("\\") || file === "." || file === "..") {
      throw new Error(`safetensors index ${index}: tensor '${name}': shard must be a file name in the same folder, got ${JSON.stringify(file)}`);
    }
    weightMap.set(name, file);
  }
  return { weightMap, metadata: (json.metadata as Record<string, unknown> | undefined) ?? null };
}

/** Opens every shard the index names and checks that index and shards agree tensor for tensor. */
function openShards(dir: string, index: string, weightMap: Map<string, string>): Map<string, SafetensorsFile> {
  const byFile = new Map<string, string[]>();
  for (const [name, file] of weightMap) {
    if (!byFile.has(file)) byFile.set(file, []);
    byFile.get(file)!.push(name);
  }
  const shardOf = new Map<string, SafetensorsFile>();
  for (const [file, names] of [...byFile].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const p = path.join(dir, file);
    if (!fs.existsSync(p)) {
      throw new Error(`safetensors index ${index}: shard ${file} is missing (it should hold ${names.length} tensors, e.g. '${names[0]}')`);
    }
    const shard = SafetensorsFile.open(p);
    for (const n of names) {
      if (!shard.has(n)) throw new Error(`safetensors index ${index}: tensor '${n}' is mapped to ${file}, but ${p} has no such tensor`);
    }
    for (const n of shard.names) {
      const listed = weightMap.get(n);
      if (listed !== file) {
        throw new Error(`safetensors index ${index}: shard ${p} holds tensor '${n}', which the index ${listed === undefined ? "does not list" : `maps to ${listed}`}`);
      }
      shardOf.set(n, shard);
    }
  }
  return shardOf;
}

/** Loads every (selected) tensor of a checkpoint folder: single file or index + shards. */
export function loadSafetensorsFolder(dir: string, opts: LoadOptions & FolderOptions = {}): Map<string, Tensor> {
  return SafetensorsFolder.open(dir, opts).load(opts);
}

/**
 * Splits tensors into shards the way huggingface_hub does: in the given
 * order, start a new shard when the next tensor would pass the limit; a
 * tensor larger than the limit gets a shard to itself.
 */
export function planShards(tensors: readonly [string, Tensor][], maxShardBytes: number): [string, Tensor][][] {
  const shards: [string, Tensor][][] = [];
  let cur: [string, Tensor][] = [];
  let curBytes = 0;
  for (const entry of tensors) {
    const bytes = tensorBytes(entry[1]);
    if (bytes > maxShardBytes) {
      shards.push([entry]);
      continue;
    }
    if (cur.length > 0 && curBytes + bytes > maxShardBytes) {
      shards.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(entry);
    curBytes += bytes;
  }
  if (cur.length > 0 || shards.length === 0) shards.push(cur);
  return shards;
}

/**
 * Writes a checkpoint's tensors into `dir` as transformers does: one
 * `<prefix>.safetensors` when they fit in one shard, else numbered shards and
 * `<prefix>.safetensors.index.json` (written last, keys sorted, 2-space
 * indent). Files left by an earlier save under the same prefix that the new
 * layout does not use are removed afterwards. Each file is written
 * atomically; for an all-or-nothing checkpoint folder, call this inside
 * writeFolderAtomic. Returns the files written and the total data bytes.
 */
export function saveSafetensorsSharded(dir: string, tensors: TensorDict, opts: ShardedSaveOptions = {}): { files: string[]; totalSize: number } {
  const prefix = checkPrefix(opts.prefix ?? "model");
  const maxShardBytes = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShardBytes > 0)) throw new Error(`saveSafetensorsSharded ${dir}: maxShardBytes must be positive, got ${maxShardBytes}`);
  const metadata = opts.metadata ?? { format: "pt" };
  // Checked before any file is written, so a bad entry cannot leave a partial set of shards.
  const list = checkedEntries(dir, tensors);
  const totalSize = list.reduce((s, [, t]) => s + tensorBytes(t), 0);
  fs.mkdirSync(dir, { recursive: true });
  const shards = planShards(list, maxShardBytes);
  const files = shards.length === 1 ? [singleName(prefix)] : shards.map((_, i) => shardName(prefix, i + 1, shards.length));
  shards.forEach((shard, i) => saveSafetensors(path.join(dir, files[i]), new Map(shard), metadata));
  if (shards.length > 1) {
    const pairs = shards.flatMap((shard, i) => shard.map(([name]) => [name, files[i]] as const));
    const weightMap = Object.fromEntries(pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
    writeTextFileAtomic(path.join(dir, indexName(prefix)), JSON.stringify(index, null, 2) + "\n");
    files.push(indexName(prefix));
  }
  removeStale(dir, prefix, new Set(files));
  return { files, totalSize };
}

/** Removes this prefix's checkpoint files that the latest save did not write. */
function removeStale(dir: string, prefix: string, keep: Set<string>): void {
  const esc = prefix.replace(/[.]/g, "\\.");
  const ours = new RegExp(`^(?:${esc}-\\d{5}-of-\\d{5}\\.safetensors|${esc}\\.safetensors|${esc}\\.safetensors\\.index\\.json)$`);
  for (const name of fs.readdirSync(dir)) {
    if (ours.test(name) && !keep.has(name)) fs.rmSync(path.join(dir, name), { force: true });
  }
}
