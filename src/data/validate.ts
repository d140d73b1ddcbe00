// Validation shared by every format: raw rows in, examples and bad rows out.
// Each bad row is named by its file and line (or parquet row) and one reason:
//   malformed_row     the reader could not parse it, or `image` is missing
//   bad_labels        labels not a list of strings (CSV: not a `;`/`|` list or a JSON list)
//   unknown_category  a label outside the configured categories (the message lists them
//                     and suggests data.label_map); labels go through the label map first
//                     (`labelMap`: dataset label -> category or "safe", exact match, then
//                     case-insensitive; integer labels by their decimal text)
//   bad_split / bad_field   split, id, image or hard of the wrong type or value
//   duplicate_id      an id already used by an earlier row (that row is named)
//   path_escape       an image path that leaves the dataset root: `..`, an absolute
//                     path elsewhere, or a symlink whose target lies outside
//   missing_image     no file at the path
//   unreadable_image  the image cannot be decoded: every pixel is decoded with
//                     io/image_decode.ts, the function the prompt encoder uses, so a
//                     truncated JPEG/PNG, an unsupported format or an image over the
//                     pixel limit is caught here, not later in training or predict
// The checks run in that order and a row gets the first reason that applies.
// `onBadRow` then decides: "fail" throws one Error listing up to 20 of them and
// the count; "skip" keeps them in `dropped` for the caller to print.
import fs from "node:fs";
import path from "node:path";
import { DEFAULT_MAX_PIXELS, decodeImage } from "../io/image_decode.js";

import { type BadRowKind, type DroppedRow, type Example, type ImageRef, type OnBadRow, type RawRow, SAFE_LABEL, type SourceRef, type SplitName } from "./types.js";

export interface ValidateOptions {
  /** The categories a label may name (checked by `checkCategoryList`). */
  categories: readonly string[];
  /** Absolute dataset root: image paths may not leave it. */
  root: string;
  /** Decode every image fully (default true). Off, missing files are still reported. */
  checkImages?: boolean;
  /** Images decoded at once (default 4). */
  concurrency?: number;
  /** Dataset label -> category or "safe" (checked by `checkLabelMap`). Default none. */
  labelMap?: Readonly<Record<string, string>>;
  /** Refuse images with more pixels than this (as the prompt encoder does). Default DEFAULT_MAX_PIXELS. */
  maxPixels?: number;
}

export interface ValidateResult {
  examples: Example[];
  bad: DroppedRow[];
}

/** Characters a category name may not contain: they separate labels in CSV cells and folder names. */
const RESERVED_CHARS = /[;|+,/\\]/;

/**
 * Checks a configured category list and returns it as an array: non-empty,
 * distinct names, none of them `safe` (which means "no category") and none
 * containing `; | + , /` (label separators in CSV cells and folder names).
 */
export function checkCategoryList(categories: readonly string[] | undefined): string[] {
  if (!Array.isArray(categories) || categories.length === 0) {
    throw new Error(`categories: expected a non-empty list of category names (e.g. ["nudity", "weapons"]), got ${JSON.stringify(categories)}`);
  }
  const seen = new Set<string>();
  for (const c of categories) {
    if (typeof c !== "string" || c.trim() === "" || c !== c.trim()) {
      throw new Error(`categories: ${JSON.stringify(c)} is not a valid category name (expected a non-empty string without surrounding spaces)`);
    }
    if (c.toLowerCase() === SAFE_LABEL) throw new Error(`categories: '${c}' is reserved (it means "no category applies"); remove it from the category list`);
    if (RESERVED_CHARS.test(c)) throw new Error(`categories: '${c}' contains one of ; | + , / \\ which separate labels; rename it`);
    if (seen.has(c)) throw new Error(`categories: '${c}' is listed twice`);
    seen.add(c);
  }
  return [...categories];
}

/**
 * Checks a label map against the categories: every value is a category or
 * "safe", keys are non-empty. Returns it; throws naming the bad entry.
 */
export function checkLabelMap(map: Readonly<Record<string, string>> | undefined, categories: readonly string[]): Record<string, string> {
  if (map === undefined) return {};
  if (typeof map !== "object" || map === null || Array.isArray(map)) throw new Error(`data.label_map: expected a map of dataset label -> category, got ${JSON.stringify(map)}`);
  for (const [k, v] of Object.entries(map)) {
    if (k.trim() === "") throw new Error(`data.label_map: empty label name`);
    if (typeof v !== "string" || (v !== SAFE_LABEL && !categories.includes(v))) {
      throw new Error(`data.label_map: '${k}' maps to ${JSON.stringify(v)}, which is not a category (${categories.join(", ")}) or '${SAFE_LABEL}'`);
    }
  }
  return { ...map };
}

/** A label through the map: exact key, else a case-insensitive match; unmapped labels come back as they are. */
function mapLabel(name: string, map: Readonly<Record<string, string>> | undefined): string {
  if (!map) return name;
  if (Object.hasOwn(map, name)) return map[name];
  const lower = name.toLowerCase();
  const key = Object.keys(map).find((k) => k.toLowerCase() === lower);
  return key === undefined ? name : map[key];
}

/** `file:line`, `file: row N` or `file`, for messages. */
export function formatSource(src: SourceRef): string {
  if (src.line !== undefined) return `${src.file}:${src.line}`;
  if (src.row !== undefined) return `${src.file}: row ${src.row}`;
  return src.file;
}

/** One line per bad row (`file:line: reason`), at most `max` of them, then "... and N more". */
export function formatBadRows(bad: readonly DroppedRow[], max = 20): string {
  const lines = bad.slice(0, max).map((b) => `  ${formatSource(b.source)}: ${b.reason}`);
  if (bad.length > max) lines.push(`  ... and ${bad.length - max} more`);
  return lines.join("\n");
}

/** Counts of bad rows by kind, e.g. {missing_image: 3}. */
export function countByKind(bad: readonly DroppedRow[]): Partial<Record<BadRowKind, number>> {
  const out: Partial<Record<BadRowKind, number>> = {};
  for (const b of bad) out[b.kind] = (out[b.kind] ?? 0) + 1;
  return out;
}

/**
 * Applies the bad-row policy: under "fail", throws one Error naming `what`,
 * the count and up to 20 rows (`file:line: reason`); under "skip", returns the rows.
 */
export function applyBadRowPolicy(bad: DroppedRow[], onBadRow: OnBadRow, what: string): DroppedRow[] {
  if (onBadRow !== "fail" && onBadRow !== "skip") throw new Error(`onBadRow: expected "fail" or "skip", got ${JSON.stringify(onBadRow)}`);
  if (bad.length > 0 && onBadRow === "fail") {
    const kinds = Object.entries(countByKind(bad))
      .map(([k, n]) => `${k}: ${n}`)
      .join(", ");
    throw new Error(
      `${what}: ${bad.length} bad row${bad.length === 1 ? "" : "s"} (${kinds}); fix them, or set onBadRow to "skip" to drop them:\n${formatBadRows(bad)}`,
    );
  }
  return bad;
}

type Checked<T> = { ok: T } | { kind: BadRowKind; reason: string };
const fail = (kind: BadRowKind, reason: string): { kind: BadRowKind; reason: string } => ({ kind, reason });

/** Short JSON-ish rendering of a bad value for messages. */
function show(v: unknown): string {
  if (v instanceof Uint8Array) return `<${v.byteLength} bytes>`;
  let s: string;
  try {
    s = typeof v === "bigint" ? `${v}` : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
const typeName = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "a list" : v instanceof Uint8Array ? "bytes" : typeof v);

/**
 * Parses a CSV labels cell: empty = safe; `[...]` = a JSON list; otherwise
 * names separated by `;` or `|` (spaces around names are trimmed).
 */
export function parseLabelCell(cell: string): Checked<unknown[]> {
  const t = cell.trim();
  if (t === "") return { ok: [] };
  if (t.startsWith("[")) {
    try {
      const v = JSON.parse(t);
      if (!Array.isArray(v)) return fail("bad_labels", `labels cell ${show(t)} is JSON but not a list`);
      return { ok: v };
    } catch (e) {
      return fail("bad_labels", `labels cell ${show(t)} starts with '[' but is not a valid JSON list (${(e as Error).message})`);
    }
  }
  return { ok: t.split(/[;|]/).map((s) => s.trim()).filter((s) => s !== "") };
}

/** Maps labels through `labelMap`, checks them against the categories; returns them deduplicated, in category order. */
export function normalizeLabels(raw: unknown, categories: readonly string[], isCell = false, labelMap?: Readonly<Record<string, string>>): Checked<string[]> {
  if (raw === undefined || raw === null) return fail("bad_labels", `missing 'labels' (use an empty list [] for a safe image)`);
  let list: unknown = raw;
  if (isCell && typeof raw === "string") {
    const parsed = parseLabelCell(raw);
    if (!("ok" in parsed)) return parsed;
    list = parsed.ok;
  }
  if (!Array.isArray(list)) {
    return fail("bad_labels", `'labels' must be a list of category names, got ${typeName(list)} ${show(list)}`);
  }
  const items = list.map((x) => (typeof x === "number" || typeof x === "bigint") && labelMap && Object.hasOwn(labelMap, String(x)) ? String(x) : x);
  for (let k = 0; k < items.length; k++) {
    if (typeof items[k] !== "string") {
      const hint = typeof items[k] === "number" || typeof items[k] === "bigint" ? ` (map class ids with data.label_map, e.g. {'${items[k]}': safe})` : "";
      return fail("bad_labels", `labels[${k}] is ${typeName(items[k])} ${show(items[k])}; expected a category name (string)${hint}`);
    }
  }
  const names = (items as string[]).map((s) => mapLabel(s.trim(), labelMap));
  if (names.includes(SAFE_LABEL)) {
    if (names.some((s) => s !== SAFE_LABEL)) return fail("bad_labels", `'${SAFE_LABEL}' cannot be combined with categories: ${show(list)}`);
    return { ok: [] };
  }
  for (const name of names) {
    if (!categories.includes(name)) {
      const near = categories.find((c) => c.toLowerCase() === name.toLowerCase());
      const hint = near !== undefined ? ` (did you mean '${near}'?)` : "";
      return fail(
        "unknown_category",
        `unknown category '${name}'${hint}; valid categories: ${categories.join(", ")} (an empty list or '${SAFE_LABEL}' marks a safe image); to use the dataset's own labels, map them with data.label_map, e.g. {${name}: ${categories[0]}} or {${name}: ${SAFE_LABEL}}`,
      );
    }
  }
  return { ok: categories.filter((c) => names.includes(c)) };
}

const SPLIT_ALIASES: Record<string, SplitName> = { train: "train", val: "val", valid: "val", validation: "val", dev: "val", test: "test" };

/** A split value: absent, or train / val / test (validation, valid, dev = val; case-insensitive). */
export function normalizeSplit(raw: unknown): Checked<SplitName | undefined> {
  if (raw === undefined || raw === null || raw === "") return { ok: undefined };
  if (typeof raw === "string") {
    const s = SPLIT_ALIASES[raw.trim().toLowerCase()];
    if (s !== undefined) return { ok: s };
  }
  return fail("bad_split", `'split' must be train, val or test (or empty), got ${show(raw)}`);
}

function normalizeHard(raw: unknown): Checked<boolean | undefined> {
  if (raw === undefined || raw === null || raw === "") return { ok: undefined };
  if (typeof raw === "boolean") return { ok: raw };
  if (raw === 0 || raw === 1) return { ok: raw === 1 };
  if (typeof raw === "string") {
    const s = raw.trim().toLowerCase();
    if (["true", "1", "yes"].includes(s)) return { ok: true };
    if (["false", "0", "no"].includes(s)) return { ok: false };
  }
  return fail("bad_field", `'hard' must be true or false, got ${show(raw)}`);
}

function normalizeId(raw: unknown): Checked<string | undefined> {
  if (raw === undefined || raw === null || raw === "") return { ok: undefined };
  if (typeof raw === "string") return { ok: raw };
  if (typeof raw === "number" && Number.isInteger(raw)) return { ok: String(raw) };
  if (typeof raw === "bigint") return { ok: String(raw) };
  return fail("bad_field", `'id' must be a string or an integer, got ${typeName(raw)} ${show(raw)}`);
}

/** What the image field names: a path as written, or bytes. */
type RawImage = { path: string } | { bytes: Uint8Array; name?: string };

function normalizeImage(raw: unknown): Checked<RawImage> {
  if (raw === undefined || raw === null) return fail("malformed_row", `missing 'image' (a path relative to the manifest's folder)`);
  if (typeof raw === "string") {
    if (raw.trim() === "") return fail("malformed_row", `empty 'image' path`);
    return { ok: { path: raw } };
  }
  if (typeof raw === "object" && !Array.isArray(raw)) {
    // Hugging Face's image struct: {bytes, path}; bytes win when present.
    const o = raw as { bytes?: unknown; path?: unknown };
    const name = typeof o.path === "string" && o.path !== "" ? o.path : undefined;
    if (o.bytes instanceof Uint8Array && o.bytes.byteLength > 0) return { ok: { bytes: o.bytes, name } };
    if ((o.bytes === null || o.bytes === undefined) && name !== undefined) return { ok: { path: name } };
    if (o.bytes === null || o.bytes === undefined || o.bytes instanceof Uint8Array) {
      return fail("malformed_row", `image struct has neither bytes nor a path`);
    }
  }
  return fail("bad_field", `'image' must be a path string or a {bytes, path} struct, got ${typeName(raw)} ${show(raw)}`);
}

/** True when `p` is `root` or below it (both absolute, normalized). */
function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

const toPosix = (p: string) => p.split(path.sep).join("/");

/** The path checks that need no decoding: escape, existence, symlink escape. */
function checkImagePath(written: string, base: string, root: string, realRoot: string): Checked<string> {
  const abs = path.resolve(base, written);
  if (!isInside(root, abs)) {
    return fail("path_escape", `image path '${written}' resolves to ${abs}, outside the dataset root ${root}`);
  }
  let real: string;
  try {
    real = fs.realpathSync(abs);
  } catch {
    const dangling = (() => {
      try {
        return fs.lstatSync(abs).isSymbolicLink();
      } catch {
        return false;
      }
    })();
    return fail("missing_image", dangling ? `image '${written}' is a symlink to a missing file (${abs})` : `image file not found: ${abs}`);
  }
  if (!isInside(realRoot, real)) {
    return fail("path_escape", `image path '${written}' goes through a symlink to ${real}, outside the dataset root ${root}`);
  }
  if (!fs.statSync(real).isFile()) return fail("unreadable_image", `image path '${written}' is not a file (${abs})`);
  return { ok: abs };
}

/** Decodes every pixel (io/image_decode.ts, as the prompt encoder will), returning the size or why it failed. */
async function decodeCheck(input: string | Uint8Array, label: string, maxPixels: number): Promise<Checked<{ width: number; height: number }>> {
  try {
    const img = await decodeImage(input, { label, maxPixels });
    return { ok: { width: img.width, height: img.height } };
  } catch (e) {
    return fail("unreadable_image", (e as Error).message);
  }
}

/** Runs `fn` over items with at most `limit` promises in flight, keeping the order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const k = next++;
      out[k] = await fn(items[k]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/**
 * Validates rows from any reader. Returns the good rows as examples (in
 * input order) and the bad ones with their reasons (in input order).
 */
export async function validateRows(rows: readonly RawRow[], opts: ValidateOptions): Promise<ValidateResult> {
  const root = path.resolve(opts.root);
  let realRoot: string;
  try {
    realRoot = fs.realpathSync(root);
  } catch {
    throw new Error(`dataset root ${root} does not exist`);
  }
  const categories = opts.categories;
  const checkImages = opts.checkImages ?? true;

  const bad: { index: number; row: DroppedRow }[] = [];
  const reject = (index: number, source: SourceRef, c: { kind: BadRowKind; reason: string }) => bad.push({ index, row: { source, kind: c.kind, reason: c.reason } });

  // 1. Field checks, no I/O.
  const candidates: { index: number; ex: Example; imageAbs?: string }[] = [];
  rows.forEach((row, index) => {
    if (row.error) return reject(index, row.source, row.error);
    const image = normalizeImage(row.image);
    if (!("ok" in image)) return reject(index, row.source, image);
    const labels = normalizeLabels(row.labels, categories, row.labelsIsCell === true, opts.labelMap);
    if (!("ok" in labels)) return reject(index, row.source, labels);
    const split = normalizeSplit(row.split);
    if (!("ok" in split)) return reject(index, row.source, split);
    const hard = normalizeHard(row.hard);
    if (!("ok" in hard)) return reject(index, row.source, hard);
    const id = normalizeId(row.id);
    if (!("ok" in id)) return reject(index, row.source, id);

    let ref: ImageRef;
    let imageAbs: string | undefined;
    let defaultId: string;
    if ("path" in image.ok) {
      const checked = checkImagePath(image.ok.path, row.base, root, realRoot);
      if (!("ok" in checked)) return reject(index, row.source, checked);
      imageAbs = checked.ok;
      ref = { path: imageAbs };
      defaultId = toPosix(path.relative(root, imageAbs));
    } else {
      ref = image.ok.name !== undefined ? { bytes: image.ok.bytes, name: image.ok.name } : { bytes: image.ok.bytes };
      defaultId = `${toPosix(path.relative(root, row.source.file))}#${row.source.row ?? row.source.line ?? 0}`;
    }
    const ex: Example = { id: id.ok ?? defaultId, image: ref, labels: labels.ok, source: row.source };
    if (split.ok !== undefined) ex.split = split.ok;
    if (hard.ok !== undefined) ex.hard = hard.ok;
    candidates.push({ index, ex, imageAbs });
  });

  // 2. Duplicate ids: the first occurrence stays.
  const firstSeen = new Map<string, SourceRef>();
  const unique = candidates.filter((c) => {
    const prev = firstSeen.get(c.ex.id);
    if (prev !== undefined) {
      reject(c.index, c.ex.source, fail("duplicate_id", `duplicate id '${c.ex.id}' (first used at ${formatSource(prev)})`));
      return false;
    }
    firstSeen.set(c.ex.id, c.ex.source);
    return true;
  });

  // 3. Decode every image.
  let kept = unique;
  if (checkImages) {
    const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
    const sizes = await mapLimit(unique, opts.concurrency ?? 4, (c) =>
      decodeCheck(c.imageAbs ?? (c.ex.image as { bytes: Uint8Array }).bytes, c.imageAbs ? `image ${path.relative(root, c.imageAbs) || c.imageAbs}` : "embedded image", maxPixels),
    );
    kept = unique.filter((c, k) => {
      const s = sizes[k];
      if (!("ok" in s)) {
        reject(c.index, c.ex.source, s);
        return false;
      }
      c.ex.size = s.ok;
      return true;
    });
  }

  bad.sort((a, b) => a.index - b.index);
  return { examples: kept.map((c) => c.ex), bad: bad.map((b) => b.row) };
}
