// The dataset layer's shared types: one labelled image (Example), a loaded
// dataset, and the rows that were refused and why (DroppedRow). Every format
// reader (JSONL, CSV, image folder, parquet) produces the same Example shape.

/** The three splits a dataset is cut into. */
export type SplitName = "train" | "val" | "test";
export const SPLIT_NAMES: readonly SplitName[] = ["train", "val", "test"];

/** The default categories a moderation model flags; users configure their own. */
export const DEFAULT_CATEGORIES: readonly string[] = ["nudity", "weapons"];

/**
 * The word that means "no category applies". Accepted as a label on its own
 * (`["safe"]` = `[]`) and as the image-folder name for safe images, so it
 * cannot itself be a category.
 */
export const SAFE_LABEL = "safe";

/** Where an image comes from: a file on disk (absolute path) or encoded bytes (parquet). */
export type ImageRef = { path: string } | { bytes: Uint8Array; name?: string };

/**
 * Where a row was read from, for error messages: a text manifest gives the
 * 1-based line where the row starts; parquet the 0-based row index within
 * that file (`row`); an image folder the image file itself (no line).
 */
export interface SourceRef {
  file: string;
  line?: number;
  row?: number;
}

/** One labelled image. */
export interface Example {
  /** Unique within the dataset. Default: the image path relative to the root (posix separators); for embedded bytes, `<file relative to the root>#<row>`. */
  id: string;
  /** A path is absolute (resolved against the dataset root). */
  image: ImageRef;
  /** Category names, in the order of the configured category list; empty = safe. */
  labels: string[];
  /** Set when the source names a split, or after `assignSplits`. */
  split?: SplitName;
  /** Where the row came from. */
  source: SourceRef;
  /** The manifest's optional `hard` flag (the synthetic set marks its hard subset with it). */
  hard?: boolean;
  /** Pixel size read from the image header during validation (absent when image checks are off). */
  size?: { width: number; height: number };
}

/** Why a row was refused; one kind per validation rule. */
export type BadRowKind =
  | "malformed_row" // a JSON/CSV line that does not parse, a missing key, a wrong column count
  | "bad_labels" // labels of the wrong type (not a list of strings), or an unmappable class index
  | "unknown_category" // a label that is not one of the configured categories
  | "bad_split" // a split value other than train / val / test
  | "bad_field" // id / image / hard of the wrong type
  | "duplicate_id" // an id seen earlier in the dataset
  | "path_escape" // an image path that leaves the dataset root (.., absolute, or via a symlink)
  | "missing_image" // no file at the image path
  | "unreadable_image"; // a file (or bytes) whose header sharp cannot decode

/** A refused row: where it was and why. */
export interface DroppedRow {
  source: SourceRef;
  kind: BadRowKind;
  /** Human-readable reason, without the location prefix. */
  reason: string;
}

/** What to do with bad rows: stop with one error listing them, or drop them and report them in `dropped`. */
export type OnBadRow = "fail" | "skip";

/** A loaded, validated dataset. */
export interface Dataset {
  examples: Example[];
  /** The configured category list (the order labels are sorted in). */
  categories: string[];
  /** Absolute folder that image paths may not leave; default ids are paths relative to it. */
  root: string;
  /** Rows refused under `onBadRow: "skip"` (always empty under "fail", which throws instead). */
  dropped: DroppedRow[];
  /** Which reader produced it. */
  format: DatasetFormat;
  /** Files the image-folder reader passed over (not an image extension, or hidden), relative to the root. */
  ignoredFiles: string[];
}

/** The supported on-disk formats. */
export type DatasetFormat = "jsonl" | "csv" | "folder" | "parquet";

/**
 * A row as a reader found it, before validation. Readers only split the
 * source into fields; every check on the values happens in validate.ts so
 * that all formats share the same rules and messages.
 */
export interface RawRow {
  source: SourceRef;
  /** Set when the reader could not make fields out of the row; the value fields are then ignored. */
  error?: { kind: BadRowKind; reason: string };
  /** Absent, or a string. */
  id?: unknown;
  /** A path string (relative to `base`, or absolute), or `{bytes, path}` (parquet's image struct). */
  image?: unknown;
  /** A list of category names. */
  labels?: unknown;
  /** True when `labels` is a CSV cell, to be parsed as `a;b`, `a|b` or a JSON list. */
  labelsIsCell?: boolean;
  split?: unknown;
  hard?: unknown;
  /** Folder that a relative image path is resolved against (the manifest's folder). */
  base: string;
}
