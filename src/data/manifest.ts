// Manifest readers: JSONL and CSV. A manifest lists one image per row:
//
//   JSONL  {"image": "imgs/a.png", "labels": ["weapons"], "split": "train", "id": "a", "hard": false}
//   CSV    image,labels,split,id
//          imgs/a.png,weapons,train,a
//          imgs/b.png,"nudity;weapons",,
//          imgs/c.png,,val,            <- empty labels = safe
//
// - image: a path relative to the manifest's folder (or absolute, inside it).
// - labels: JSONL, a JSON list of category names ([] = safe). CSV, one cell
//   holding names separated by `;` or `|`, or a JSON list (`["a","b"]`);
//   an empty cell = safe. A bare `safe` means safe in both.
// - split (optional): train / val / test ("validation" is read as val).
// - id (optional): defaults to the image path relative to the dataset root.
// - hard (optional): a boolean (CSV: true/false/1/0) marking a hard example.
// Other JSONL keys and CSV columns are ignored. Lines are 1-based; in CSV the
// header is line 1 and a record is named by the line it starts on.
// The readers only split rows into fields; validate.ts checks the values.
import fs from "node:fs";
import path from "node:path";

import { parseCsv } from "./csv.js";
import type { RawRow } from "./types.js";

/** The keys/columns a manifest row may carry. */
const KNOWN_COLUMNS = ["image", "labels", "split", "id", "hard"] as const;

/** Reads a JSONL manifest (one JSON object a line; blank lines are skipped). */
export function readJsonlManifest(file: string): RawRow[] {
  const abs = path.resolve(file);
  const base = path.dirname(abs);
  const text = fs.readFileSync(abs, "utf8");
  const rows: RawRow[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, k) => {
    const line = k + 1;
    const textLine = k === 0 ? raw.replace(/^\ufeff/, "") : raw;
    if (textLine.trim() === "") return;
    const source = { file: abs, line };
    let value: unknown;
    try {
      value = JSON.parse(textLine);
    } catch (e) {
      rows.push({ source, base, error: { kind: "malformed_row", reason: `invalid JSON (${(e as Error).message})` } });
      return;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      const got = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
      rows.push({ source, base, error: { kind: "malformed_row", reason: `expected a JSON object with keys image, labels, got ${got}` } });
      return;
    }
    const o = value as Record<string, unknown>;
    rows.push({ source, base, image: o.image, labels: o.labels, split: o.split, id: o.id, hard: o.hard });
  });
  return rows;
}

/**
 * Reads a CSV manifest with a header row naming at least `image` and
 * `labels`. A header without them is an error for the whole file (thrown);
 * bad records become rows with `error` set.
 */
export function readCsvManifest(file: string): RawRow[] {
  const abs = path.resolve(file);
  const base = path.dirname(abs);
  const { records, errors } = parseCsv(fs.readFileSync(abs, "utf8"));
  const rows: RawRow[] = errors.map((e) => ({ source: { file: abs, line: e.line }, base, error: { kind: "malformed_row" as const, reason: e.message } }));
  const header = records[0];
  if (header === undefined) throw new Error(`${abs}: empty CSV manifest; expected a header row with columns image, labels`);
  const names = header.fields.map((f) => f.trim());
  const col: Partial<Record<(typeof KNOWN_COLUMNS)[number], number>> = {};
  names.forEach((name, k) => {
    const known = (KNOWN_COLUMNS as readonly string[]).includes(name) ? (name as (typeof KNOWN_COLUMNS)[number]) : undefined;
    if (known === undefined) return;
    if (col[known] !== undefined) throw new Error(`${abs}:${header.line}: column '${name}' appears twice in the header`);
    col[known] = k;
  });
  for (const required of ["image", "labels"] as const) {
    if (col[required] === undefined) {
      throw new Error(`${abs}:${header.line}: the header has no '${required}' column; found: ${names.join(", ") || "(none)"}; expected image, labels and optionally split, id, hard`);
    }
  }
  const cell = (fields: string[], key: (typeof KNOWN_COLUMNS)[number]): string | undefined => {
    const k = col[key];
    if (k === undefined) return undefined;
    const v = fields[k];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  };
  for (const rec of records.slice(1)) {
    const source = { file: abs, line: rec.line };
    if (rec.fields.length !== names.length) {
      rows.push({
        source,
        base,
        error: { kind: "malformed_row", reason: `expected ${names.length} fields (${names.join(", ")}), found ${rec.fields.length}` },
      });
      continue;
    }
    rows.push({
      source,
      base,
      image: cell(rec.fields, "image"),
      labels: cell(rec.fields, "labels") ?? "",
      labelsIsCell: true,
      split: cell(rec.fields, "split"),
      id: cell(rec.fields, "id"),
      hard: cell(rec.fields, "hard"),
    });
  }
  // Parse errors and records interleave by line; keep the file's order.
  rows.sort((a, b) => (a.source.line ?? 0) - (b.source.line ?? 0));
  return rows;
}
