// loadDataset: one entry point for every format, dispatched by the path.
//
//   file  *.jsonl / *.ndjson -> JSONL manifest; *.csv -> CSV manifest; *.parquet -> parquet
//   dir   containing manifest.jsonl or manifest.csv -> that manifest (both: an error);
//         else containing *.parquet files (up to 3 levels down, e.g. data/train-0000.parquet)
//         -> all of them, sorted by path; else -> an image folder (labels from folder
//         names, or from Hugging Face imagefolder metadata.csv/jsonl: hf_metadata.ts)
// `format` forces a reader. The dataset root (the folder image paths must
// stay inside) is the manifest's or parquet file's folder, or the image
// folder itself, unless `root` is given.
import fs from "node:fs";
import path from "node:path";

import { metadataFolders, readMetadataRows } from "./hf_metadata.js";
import { readImageFolder } from "./image_folder.js";
import { readCsvManifest, readJsonlManifest } from "./manifest.js";
import { readParquetRows } from "./parquet.js";
import { type Dataset, DEFAULT_CATEGORIES, type DatasetFormat, type OnBadRow, type RawRow } from "./types.js";
import { applyBadRowPolicy, checkCategoryList, checkLabelMap, formatBadRows, validateRows } from "./validate.js";

export interface LoadDatasetOptions {
  /** Category names labels may use (default DEFAULT_CATEGORIES: nudity, weapons). */
  categories?: readonly string[];
  /** Bad rows: "fail" throws one Error listing them (default); "skip" drops them into `dropped`. */
  onBadRow?: OnBadRow;
  /** Force a reader instead of guessing from the path (default "auto"). */
  format?: DatasetFormat | "auto";
  /** Folder that image paths must stay inside, and that default ids are relative to (default: see the file header). Relative paths are still read from the manifest's / parquet file's folder. */
  root?: string;
  /** Decode every image in full (default true), as training and predict will. */
  checkImages?: boolean;
  /** Dataset label -> category or "safe", applied in every format before labels are checked (config data.label_map). */
  labelMap?: Readonly<Record<string, string>>;
  /** Parquet only: names of integer class labels (default: the file's ClassLabel metadata). */
  labelNames?: readonly string[];
}

export interface DetectedFormat {
  format: DatasetFormat;
  /** The manifest / parquet files to read (for "folder": the folder). */
  files: string[];
  /** The default dataset root. */
  root: string;
}

const MANIFEST_NAMES = ["manifest.jsonl", "manifest.csv"];

function findParquet(dir: string, depth: number): string[] {
  if (depth < 0) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith(".")) continue;
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name.toLowerCase().endsWith(".parquet")) out.push(p);
    else if (e.isDirectory()) out.push(...findParquet(p, depth - 1));
  }
  return out;
}

function formatOfFile(file: string): DatasetFormat | undefined {
  const ext = path.extname(file).toLowerCase();
  if (ext === ".jsonl" || ext === ".ndjson") return "jsonl";
  if (ext === ".csv") return "csv";
  if (ext === ".parquet") return "parquet";
  return undefined;
}

/** Decides which reader a path needs (see the file header). */
export function detectFormat(p: string, forced: DatasetFormat | "auto" = "auto"): DetectedFormat {
  const abs = path.resolve(p);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new Error(`dataset path not found: ${abs}`);
  }
  if (st.isFile()) {
    const format = forced === "auto" ? formatOfFile(abs) : forced;
    if (format === undefined) throw new Error(`${abs}: unknown dataset file type; expected .jsonl, .csv or .parquet, or a folder`);
    if (format === "folder") throw new Error(`${abs}: format "folder" needs a folder, got a file`);
    return { format, files: [abs], root: path.dirname(abs) };
  }
  if (!st.isDirectory()) throw new Error(`${abs}: not a file or folder`);
  const manifests = MANIFEST_NAMES.map((n) => path.join(abs, n)).filter((f) => fs.existsSync(f));
  const pick = (format: DatasetFormat): DetectedFormat | undefined => {
    if (format === "jsonl" || format === "csv") {
      const f = manifests.find((m) => formatOfFile(m) === format);
      return f === undefined ? undefined : { format, files: [f], root: abs };
    }
    if (format === "parquet") {
      const files = findParquet(abs, 3).sort();
      return files.length === 0 ? undefined : { format, files, root: abs };
    }
    return { format: "folder", files: [abs], root: abs };
  };
  if (forced !== "auto") {
    const d = pick(forced);
    if (d === undefined) throw new Error(`${abs}: format "${forced}" requested but the folder has no ${forced === "parquet" ? "*.parquet files" : `manifest.${forced}`}`);
    return d;
  }
  if (manifests.length > 1) throw new Error(`${abs} holds both manifest.jsonl and manifest.csv; pass the one to use`);
  return pick("jsonl") ?? pick("csv") ?? pick("parquet") ?? pick("folder")!;
}

/**
 * Loads and validates a dataset. Under onBadRow "fail" any bad row throws
 * (one Error listing them); under "skip" they are returned in `dropped`, and
 * the caller is expected to print them (formatBadRows). A dataset left with
 * no example at all is an error either way.
 */
export async function loadDataset(p: string, opts: LoadDatasetOptions = {}): Promise<Dataset> {
  const categories = checkCategoryList(opts.categories ?? DEFAULT_CATEGORIES);
  const labelMap = checkLabelMap(opts.labelMap, categories);
  const onBadRow = opts.onBadRow ?? "fail";
  const detected = detectFormat(p, opts.format ?? "auto");
  const root = path.resolve(opts.root ?? detected.root);

  let rows: RawRow[];
  let ignoredFiles: string[] = [];
  switch (detected.format) {
    case "jsonl":
      rows = readJsonlManifest(detected.files[0]);
      break;
    case "csv":
      rows = readCsvManifest(detected.files[0]);
      break;
    case "parquet":
      rows = await readParquetRows(detected.files, { labelNames: opts.labelNames, labelMap });
      break;
    case "folder": {
      const meta = metadataFolders(detected.files[0]);
      if (meta.length > 0) {
        rows = meta.flatMap((m) => readMetadataRows(m.dir, m.file, m.split));
        break;
      }
      const r = readImageFolder(detected.files[0]);
      rows = r.rows;
      ignoredFiles = r.ignored;
      break;
    }
  }
  const what = detected.format === "folder" ? `image folder ${detected.files[0]}` : detected.files.join(", ");
  if (rows.length === 0) throw new Error(`${what}: no rows found (${detected.format})`);

  const { examples, bad } = await validateRows(rows, { categories, root, checkImages: opts.checkImages, labelMap });
  const dropped = applyBadRowPolicy(bad, onBadRow, what);
  if (examples.length === 0) throw new Error(`${what}: all ${rows.length} rows are bad; nothing left to use:\n${formatBadRows(bad, 5)}`);
  return { examples, categories, root, dropped, format: detected.format, ignoredFiles };
}
