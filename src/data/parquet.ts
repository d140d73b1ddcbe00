// Parquet datasets in the Hugging Face `datasets` layout, read with hyparquet.
//
// Columns (others are ignored):
//   image   a struct {bytes: binary, path: string} (datasets' Image feature; bytes
//           win when present, else path is read relative to the parquet file's
//           folder), or a plain path string
//   labels  list<string> of category names, or list<int> of class indices; or
//   label   one string, or one int (a ClassLabel); "safe" (as a name) = no category
//   split   optional string (train / val / validation / test)
//   id      optional string or int; default `<file relative to the root>#<row>`
//   hard    optional bool
// Class indices map to names through `labelNames` if given, else through the
// ClassLabel names that `datasets` stores in the file's `huggingface`
// key-value metadata, else (no names) through `labelMap` keyed by the index's
// decimal text ({"0": "safe"}). The names then go through the label map like
// every other label (validate.ts). A shard without a split column takes its split from its
// file name (`train-00000-of-00002.parquet`, `validation.parquet`) or its
// folder (`.../test/0000.parquet`), as the Hub's converted datasets are laid out.
// Rows are named by their 0-based index within their file.
// Every file is read whole into memory (images included): fine for the
// thousands of images a moderation fine-tune uses, not for a web-scale set.
import fs from "node:fs";
import path from "node:path";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from "hyparquet";

import type { BadRowKind, RawRow, SplitName } from "./types.js";

export interface ParquetReadOptions {
  /** Names for integer class labels, index = class id (default: the ClassLabel names in the file's metadata). */
  labelNames?: readonly string[];
  /** data.label_map: lets integer labels without names through as their decimal text when the map names them. */
  labelMap?: Readonly<Record<string, string>>;
}

const decoder = new TextDecoder("utf-8", { fatal: false });
/** Strings arrive as strings when annotated UTF8, as bytes when not. */
const asText = (v: unknown): unknown => (v instanceof Uint8Array ? decoder.decode(v) : v);

/** The ClassLabel names of a column, from datasets' `huggingface` metadata (Value, Sequence/List of ClassLabel). */
function hfClassNames(kv: { key: string; value?: string }[] | undefined, column: string): string[] | undefined {
  const raw = kv?.find((e) => e.key === "huggingface")?.value;
  if (raw === undefined) return undefined;
  try {
    const feature = JSON.parse(raw)?.info?.features?.[column];
    const names = feature?.names ?? feature?.feature?.names;
    return Array.isArray(names) && names.every((n: unknown) => typeof n === "string") ? names : undefined;
  } catch {
    return undefined;
  }
}

const SPLIT_WORDS: Record<string, SplitName> = { train: "train", val: "val", valid: "val", validation: "val", test: "test" };

/** A split named by the file (`train-00000-of-00001.parquet`, `test.parquet`) or its folder, if any. */
export function splitFromParquetPath(file: string): SplitName | undefined {
  const stem = path.basename(file, path.extname(file)).toLowerCase();
  const m = /^([a-z]+)(?:[-_.]|$)/.exec(stem);
  if (m && SPLIT_WORDS[m[1]] !== undefined) return SPLIT_WORDS[m[1]];
  return SPLIT_WORDS[path.basename(path.dirname(file)).toLowerCase()];
}

/** Reads the rows of one or more parquet files (in the order given). */
export async function readParquetRows(files: readonly string[], opts: ParquetReadOptions = {}): Promise<RawRow[]> {
  const rows: RawRow[] = [];
  for (const f of files) rows.push(...(await readOne(path.resolve(f), opts)));
  return rows;
}

async function readOne(file: string, opts: ParquetReadOptions): Promise<RawRow[]> {
  if (!fs.existsSync(file)) throw new Error(`parquet file not found: ${file}`);
  const buffer = await asyncBufferFromFile(file);
  let metadata;
  try {
    metadata = await parquetMetadataAsync(buffer);
  } catch (e) {
    throw new Error(`${file}: not a readable parquet file (${(e as Error).message})`);
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  const has = (c: string) => columns.includes(c);
  if (!has("image")) throw new Error(`${file}: no 'image' column; columns: ${columns.join(", ")}; expected image, labels (or label), and optionally split, id`);
  const labelCol = has("labels") ? "labels" : has("label") ? "label" : undefined;
  if (labelCol === undefined) throw new Error(`${file}: no 'labels' or 'label' column; columns: ${columns.join(", ")}`);

  const names = opts.labelNames ?? hfClassNames(metadata.key_value_metadata, labelCol);
  const wanted = ["image", labelCol, ...["split", "id", "hard"].filter(has)];
  let objects: Record<string, unknown>[];
  try {
    // utf8: false keeps unannotated binary (the image bytes) as bytes; annotated strings still decode.
    objects = await parquetReadObjects({ file: buffer, metadata, columns: wanted, utf8: false });
  } catch (e) {
    throw new Error(`${file}: cannot read columns ${wanted.join(", ")} (${(e as Error).message})`);
  }

  const base = path.dirname(file);
  const fileSplit = has("split") ? undefined : splitFromParquetPath(file);
  return objects.map((o, row): RawRow => {
    const source = { file, row };
    const labels = toLabelList(o[labelCol], labelCol, names, opts.labelMap);
    if ("error" in labels) return { source, base, error: labels.error };
    const img = o.image;
    const image =
      img !== null && typeof img === "object" && !(img instanceof Uint8Array) ? { ...(img as object), path: asText((img as { path?: unknown }).path) } : asText(img);
    return { source, base, image, labels: labels.list, split: has("split") ? asText(o.split) : fileSplit, id: asText(o.id), hard: o.hard };
  });
}

/** A labels/label cell as a list of names (ints mapped through `names`). */
function toLabelList(v: unknown, column: string, names: readonly string[] | undefined, labelMap?: Readonly<Record<string, string>>): { list: unknown } | { error: { kind: BadRowKind; reason: string } } {
  const one = (x: unknown): { ok: unknown } | { error: { kind: BadRowKind; reason: string } } => {
    if (typeof x === "bigint" || typeof x === "number") {
      const k = Number(x);
      if (names === undefined && labelMap && Object.hasOwn(labelMap, String(k))) return { ok: String(k) };
      if (names === undefined) {
        return {
          error: {
            kind: "bad_labels",
            reason: `'${column}' holds the class index ${k} but no class names are known (no ClassLabel names in the file's metadata); name the classes with data.label_map (e.g. {'${k}': safe})`,
          },
        };
      }
      if (!Number.isInteger(k) || k < 0 || k >= names.length) {
        return { error: { kind: "bad_labels", reason: `'${column}' class index ${k} is outside 0..${names.length - 1} (${names.join(", ")})` } };
      }
      return { ok: names[k] };
    }
    return { ok: asText(x) };
  };
  if (v === null || v === undefined) return { list: undefined };
  if (column === "label") {
    const r = one(v);
    return "error" in r ? r : { list: [r.ok] };
  }
  if (!Array.isArray(v)) return { list: asText(v) };
  const out: unknown[] = [];
  for (const x of v) {
    const r = one(x);
    if ("error" in r) return r;
    out.push(r.ok);
  }
  return { list: out };
}
