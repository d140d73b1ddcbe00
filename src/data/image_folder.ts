// Image-folder datasets: the folder a file sits in names its labels.
//
//   root/safe/...                   safe images (no category)
//   root/weapons/...                one folder per category
//   root/nudity+weapons/...         `+` joins categories for multi-label images
//   root/train/weapons/...          optional split level: when every top-level
//   root/val/safe/...               folder is train / val / validation / test
//
// Files may be nested at any depth under a category folder. Files with an
// image extension are rows; other files and hidden entries (".x") are passed
// over and returned in `ignored` (so `data check` can show them). A symlinked
// file is read like a file (validation refuses one that leads outside the
// root); symlinked folders are not followed. An image outside any category
// folder is a bad row. Ids default to the path relative to the root.
import fs from "node:fs";
import path from "node:path";

import type { RawRow, SplitName } from "./types.js";

/** Extensions read as images (case-insensitive). bmp is listed so that such files fail loudly in validation (sharp cannot decode it). */
export const IMAGE_EXTENSIONS: readonly string[] = [".png", ".jpg", ".jpeg", ".webp", ".gif", ".avif", ".tif", ".tiff", ".bmp"];

const SPLIT_DIRS: Record<string, SplitName> = { train: "train", val: "val", valid: "val", validation: "val", test: "test" };

export interface ImageFolderRows {
  rows: RawRow[];
  /** Files passed over, relative to the root (posix separators). */
  ignored: string[];
}

const isImage = (name: string) => IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
const byName = (a: fs.Dirent, b: fs.Dirent) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Files and folders of a directory, sorted by name; symlinks resolved to what they point at. */
function listDir(dir: string): { files: string[]; dirs: string[]; other: string[] } {
  const files: string[] = [];
  const dirs: string[] = [];
  const other: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort(byName)) {
    const p = path.join(dir, e.name);
    if (e.name.startsWith(".")) other.push(p);
    else if (e.isDirectory()) dirs.push(p);
    else if (e.isFile()) files.push(p);
    else if (e.isSymbolicLink()) {
      let st: fs.Stats | undefined;
      try {
        st = fs.statSync(p);
      } catch {
        st = undefined; // dangling: let validation report it as missing
      }
      if (st === undefined || st.isFile()) files.push(p);
      else other.push(p); // symlinked folder: not followed
    } else other.push(p);
  }
  return { files, dirs, other };
}

/** Reads an image folder (see the file header for the layout). */
export function readImageFolder(rootDir: string): ImageFolderRows {
  const root = path.resolve(rootDir);
  const rows: RawRow[] = [];
  const ignored: string[] = [];
  const rel = (p: string) => path.relative(root, p).split(path.sep).join("/");

  const top = listDir(root);
  const splitLayout = top.dirs.length > 0 && top.dirs.every((d) => SPLIT_DIRS[path.basename(d).toLowerCase()] !== undefined);

  const addLoose = (files: string[], where: string) => {
    for (const f of files) {
      if (!isImage(f)) ignored.push(rel(f));
      else
        rows.push({
          source: { file: f },
          base: root,
          error: { kind: "unknown_category", reason: `image is not inside a category folder; move it to ${where}/<category>/ or ${where}/safe/` },
        });
    }
  };

  const walkCategory = (dir: string, labels: string[], split: SplitName | undefined) => {
    const { files, dirs, other } = listDir(dir);
    ignored.push(...other.map(rel));
    for (const f of files) {
      if (!isImage(f)) {
        ignored.push(rel(f));
        continue;
      }
      rows.push({ source: { file: f }, base: root, image: f, labels, split });
    }
    for (const d of dirs) walkCategory(d, labels, split);
  };

  /** A category folder's name: `safe`, one category, or categories joined by `+`. */
  const labelsOf = (dir: string) => {
    const name = path.basename(dir);
    return name === "safe" ? [] : name.split("+");
  };

  ignored.push(...top.other.map(rel));
  if (splitLayout) {
    addLoose(top.files, `${root}/<split>`);
    for (const splitDir of top.dirs) {
      const split = SPLIT_DIRS[path.basename(splitDir).toLowerCase()];
      const inner = listDir(splitDir);
      ignored.push(...inner.other.map(rel));
      addLoose(inner.files, splitDir);
      for (const d of inner.dirs) walkCategory(d, labelsOf(d), split);
    }
  } else {
    addLoose(top.files, root);
    for (const d of top.dirs) walkCategory(d, labelsOf(d), undefined);
  }
  return { rows, ignored };
}
