// Hugging Face imagefolder metadata: an image folder whose labels are given
// by a metadata file rather than by folder names.
//
//   root/metadata.csv        file_name,label            (or metadata.jsonl:
//   root/a.png               a.png,porn                  {"file_name": "a.png", "label": "porn"})
//   root/sub/b.jpg           sub/b.jpg,neutral
//   root/train/metadata.csv  one per split folder (train/ val|validation/ test/) also works
//
// - file_name: the image path relative to the metadata file's folder.
// - label: one label (a string, or an integer class id that data.label_map
//   names, e.g. {"0": safe}); or labels: a list (CSV: `a;b`, `a|b` or a JSON
//   list, as in manifests). Other columns are ignored; optional split, id.
// - Every image under a metadata file's folder needs a row; an image without
//   one is a bad row, as `datasets` refuses such a folder too.
// A metadata file without a label/labels column gives no labels: the folder
// names do, as for a plain image folder (the file is passed over).
import fs from "node:fs";
import path from "node:path";
import { parseCsv } from "./csv.js";
import { IMAGE_EXTENSIONS } from "./image_folder.js";
import type { RawRow, SplitName } from "./types.js";

/** Metadata file names imagefolder reads, in order of preference. */
export const METADATA_FILES = ["metadata.csv", "metadata.jsonl"] as const;

const SPLIT_DIRS: Record<string, SplitName> = { train: "train", val: "val", valid: "val", validation: "val", test: "test" };

/** The metadata file of a folder (one of METADATA_FILES), if it has one with a label column. Both present: an error. */
export function findMetadata(dir: string): string | undefined {
  const found = METADATA_FILES.map((n) => path.join(dir, n)).filter((f) => fs.existsSync(f));
  if (found.length > 1) throw new Error(`${dir} holds both metadata.csv and metadata.jsonl; keep one`);
  if (found.length === 0) return undefined;
  return hasLabelColumn(found[0]) ? found[0] : undefined;
}

function hasLabelColumn(file: string): boolean {
  if (file.endsWith(".csv")) {
    const header = parseCsv(fs.readFileSync(file, "utf8")).records[0]?.fields.map((f) => f.trim()) ?? [];
    return header.includes("label") || header.includes("labels");
  }
  for (const line of fs.readFileSync(file, "utf8").split(/\r?\n/)) {
    if (line.trim() === "") continue;
    try {
      const o = JSON.parse(line);
      return o !== null && typeof o === "object" && ("label" in o || "labels" in o);
    } catch {
      return true; // let the reader report the bad line
    }
  }
  return false;
}

/** The folders whose metadata files give labels: the root, or each split folder. Empty when none does. */
export function metadataFolders(root: string): { dir: string; file: string; split?: SplitName }[] {
  const atRoot = findMetadata(root);
  if (atRoot) return [{ dir: root, file: atRoot }];
  const out: { dir: string; file: string; split?: SplitName }[] = [];
  for (const e of fs.readdirSync(root, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const split = SPLIT_DIRS[e.name.toLowerCase()];
    if (!e.isDirectory() || split === undefined) continue;
    const f = findMetadata(path.join(root, e.name));
    if (f) out.push({ dir: path.join(root, e.name), file: f, split });
  }
  return out;
}

function imagesBelow(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith(".")) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...imagesBelow(p));
    else if (e.isFile() && IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) out.push(p);
  }
  return out.sort();
}

/** The rows of one metadata file (labels from its label/labels column) and a bad row per image it leaves out. */
export function readMetadataRows(dir: string, file: string, split?: SplitName): RawRow[] {
  const rows: RawRow[] = [];
  const listed = new Set<string>();
  const push = (source: RawRow["source"], o: Record<string, unknown>, isCell: boolean) => {
    const name = o.file_name;
    if (typeof name !== "string" || name.trim() === "") {
      rows.push({ source, base: dir, error: { kind: "malformed_row", reason: `missing 'file_name' (the image path relative to ${dir})` } });
      return;
    }
    listed.add(path.resolve(dir, name));
    const labels = "labels" in o ? o.labels : "label" in o && o.label !== undefined && o.label !== null && o.label !== "" ? (isCell ? o.label : [o.label]) : isCell ? "" : [];
    rows.push({ source, base: dir, image: name, labels, labelsIsCell: isCell, split: o.split ?? split, id: o.id });
  };
  if (file.endsWith(".csv")) {
    const { records, errors } = parseCsv(fs.readFileSync(file, "utf8"));
    for (const e of errors) rows.push({ source: { file, line: e.line }, base: dir, error: { kind: "malformed_row", reason: e.message } });
    const header = records[0].fields.map((f) => f.trim());
    if (!header.includes("file_name")) throw new Error(`${file}:${records[0].line}: no 'file_name' column; found ${header.join(", ")}`);
    for (const rec of records.slice(1)) {
      const source = { file, line: rec.line };
      if (rec.fields.length !== header.length) {
        rows.push({ source, base: dir, error: { kind: "malformed_row", reason: `expected ${header.length} fields (${header.join(", ")}), found ${rec.fields.length}` } });
        continue;
      }
      const o: Record<string, unknown> = {};
      header.forEach((h, k) => (o[h] = rec.fields[k].trim() === "" ? undefined : rec.fields[k].trim()));
      push(source, o, true);
    }
  } else {
    fs.readFileSync(file, "utf8")
      .split(/\r?\n/)
      .forEach((line, k) => {
        if (line.trim() === "") return;
        const source = { file, line: k + 1 };
        let o: unknown;
        try {
          o = JSON.parse(line);
        } catch (e) {
          rows.push({ source, base: dir, error: { kind: "malformed_row", reason: `invalid JSON (${(e as Error).message})` } });
          return;
        }
        if (o === null || typeof o !== "object" || Array.isArray(o)) {
          rows.push({ source, base: dir, error: { kind: "malformed_row", reason: "expected a JSON object with keys file_name, label" } });
          return;
        }
        push(source, o as Record<string, unknown>, false);
      });
  }
  for (const img of imagesBelow(dir)) {
    if (!listed.has(img)) rows.push({ source: { file: img }, base: dir, error: { kind: "bad_labels", reason: `image has no row in ${file} (every image under its folder needs one)` } });
  }
  rows.sort((a, b) => (a.source.file === b.source.file ? (a.source.line ?? 0) - (b.source.line ?? 0) : a.source.file === file ? -1 : b.source.file === file ? 1 : 0));
  return rows;
}
