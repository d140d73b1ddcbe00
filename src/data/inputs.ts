// The images a command is pointed at (predict's arguments): files, folders,
// glob patterns and list files, expanded into one ordered list of files.
//
//   photo.jpg        a file, taken as it is (whatever its extension: a file
//                    that is not an image fails when it is decoded, by name)
//   photos/          a folder: every file with an image extension
//                    (IMAGE_EXTENSIONS) below it, recursively, sorted by path;
//                    hidden files and folders (".x") are passed over
//   'photos/*.jpg'   a glob (quote it so the shell leaves it alone): `*` and
//   'a/**/b?.png'    `?` match within one path segment, `[abc]` a character
//                    class, `**` any number of folders; sorted by path
//   --list FILE      one input per line, each read as if given on the command
//                    line (paths relative to the working directory); blank
//                    lines and lines starting with # are skipped
// An input that matches nothing (a missing file, an empty folder, a glob
// without matches) is reported as a problem, not thrown: the caller writes an
// error row for it and goes on. A file reached twice is listed once.
import fs from "node:fs";
import path from "node:path";
import { IMAGE_EXTENSIONS } from "./image_folder.js";

/** One input that gave no file. */
export interface InputProblem {
  input: string;
  reason: string;
}

/** A file to read, or an input that gave none, in the order of the inputs. */
export type CollectedInput = { file: string } | { problem: InputProblem };

export interface CollectedInputs {
  /** Files and problems in input order; files as paths relative to the working directory when given that way (else absolute). */
  items: CollectedInput[];
  files: string[];
  problems: InputProblem[];
}

const GLOB_CHARS = /[*?[]/;
const isImage = (f: string) => IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase());

/** Every image file below `dir` (recursive, sorted, hidden entries passed over). */
function walkImages(dir: string): string[] {
  const out: string[] = [];
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const p = path.join(dir, e.name);
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      continue; // a dangling symlink
    }
    if (st.isDirectory()) {
      if (!e.isSymbolicLink()) out.push(...walkImages(p)); // symlinked folders are not followed (no cycles)
    } else if (st.isFile() && isImage(e.name)) out.push(p);
  }
  return out;
}

/** A glob segment ("*.jpg", "img?[0-9].png") as a RegExp over one path segment. */
function segmentRegex(seg: string): RegExp {
  let re = "";
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = seg.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        const body = seg.slice(i + 1, end).replace(/\\/g, "\\\\");
        re += `[${body.startsWith("!") ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Files matching a glob pattern, sorted. */
export function expandGlob(pattern: string): string[] {
  const abs = path.isAbsolute(pattern);
  const segs = pattern.split(/[\\/]+/).filter((s, i) => s !== "" || i === 0);
  // The literal prefix: segments without glob characters.
  let k = 0;
  while (k < segs.length && !GLOB_CHARS.test(segs[k])) k++;
  const base = segs.slice(0, k).join("/") || (abs ? "/" : ".");
  const rest = segs.slice(k);
  const out: string[] = [];
  const visit = (dir: string, i: number) => {
    if (i === rest.length) {
      try {
        if (fs.statSync(dir).isFile()) out.push(dir);
      } catch {
        /* gone */
      }
      return;
    }
    let entries: fs.Dirent[];
    try {
      if (!fs.statSync(dir).isDirectory()) return;
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    const seg = rest[i];
    if (seg === "**") {
      visit(dir, i + 1); // zero folders
      for (const e of entries) if (!e.name.startsWith(".") && e.isDirectory()) visit(path.join(dir, e.name), i);
      return;
    }
    const re = segmentRegex(seg);
    for (const e of entries) if (re.test(e.name) && (!e.name.startsWith(".") || seg.startsWith("."))) visit(path.join(dir, e.name), i + 1);
  };
  if (rest.length === 0) return fs.existsSync(base) ? [base] : [];
  visit(base, 0);
  return [...new Set(out)].sort();
}

/** Reads a list file: one input per line (blank lines and # comments skipped). */
export function readListFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`--list ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

/** Expands inputs (see the file header) into files, in order, plus the inputs that gave none. */
export function collectImageInputs(inputs: readonly string[]): CollectedInputs {
  const items: CollectedInput[] = [];
  const seen = new Set<string>();
  const add = (f: string) => {
    const key = path.resolve(f);
    if (!seen.has(key)) {
      seen.add(key);
      items.push({ file: f });
    }
  };
  const problem = (input: string, reason: string) => items.push({ problem: { input, reason } });
  for (const input of inputs) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(input);
    } catch {
      st = undefined;
    }
    if (st?.isFile()) add(input);
    else if (st?.isDirectory()) {
      const found = walkImages(input);
      if (found.length === 0) problem(input, `no image files (${IMAGE_EXTENSIONS.join(" ")}) in folder ${input}`);
      found.forEach(add);
    } else if (st) problem(input, `${input}: not a file or folder`);
    else if (GLOB_CHARS.test(input)) {
      const found = expandGlob(input);
      if (found.length === 0) problem(input, `no file matches the pattern ${input}`);
      found.forEach(add);
    } else problem(input, `${input}: image file not found`);
  }
  return {
    items,
    files: items.flatMap((x) => ("file" in x ? [x.file] : [])),
    problems: items.flatMap((x) => ("problem" in x ? [x.problem] : [])),
  };
}
