// Atomic writes for checkpoints: a reader (or a crash) sees either the old
// file/folder or the complete new one, never a half-written one. Files are
// written under a temporary name in the same directory (so the final rename
// stays on one filesystem, where rename(2) is atomic), fsynced, then renamed.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

/** A unique sibling name for `target`: same directory, hidden, marked temporary. */
function tempSibling(target: string, tag: string): string {
  const dir = path.dirname(target);
  return path.join(dir, `.${path.basename(target)}.${tag}-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/**
 * Makes a directory's entries (a rename, a new file) durable. Some
 * filesystems refuse fsync on a directory; the data itself is already synced
 * then, so that refusal is not an error worth failing a save over.
 */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM" && code !== "ENOTSUP") throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Writes a file atomically: `write` fills an fd opened on a temporary file
 * next to `target`; the file is fsynced and renamed over `target` only if
 * `write` returns. If it throws, the temporary file is removed and `target`
 * is left as it was.
 */
export function writeFileAtomic(target: string, write: (fd: number) => void, mode = 0o644): void {
  const tmp = tempSibling(target, "tmp");
  const fd = fs.openSync(tmp, "wx", mode);
  let closed = false;
  try {
    write(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    closed = true;
    fs.renameSync(tmp, target);
  } catch (e) {
    if (!closed) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(path.dirname(target));
}

/** Writes a text (or byte) file atomically; see writeFileAtomic. */
export function writeTextFileAtomic(target: string, content: string | Uint8Array): void {
  writeFileAtomic(target, (fd) => {
    const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : content;
    let done = 0;
    while (done < bytes.byteLength) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done);
  });
}

/** fsyncs every regular file and directory under `dir` (files written by plain fs calls are not synced). */
function fsyncTree(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) fsyncTree(p);
    else if (e.isFile()) {
      const fd = fs.openSync(p, "r");
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
  }
  fsyncDir(dir);
}

/**
 * Writes a whole folder atomically: `fill` writes into a fresh temporary
 * directory beside `target`; when it returns, everything is fsynced and the
 * temporary directory takes `target`'s place. If `fill` throws, the
 * temporary directory is removed and `target` is untouched.
 *
 * When `target` already exists it is swapped out by two renames (old ->
 * backup, new -> target) and the backup deleted; Node has no
 * renameat2(RENAME_EXCHANGE), so a crash between the two renames leaves
 * `target` absent and the old folder intact under `.<name>.old-*`. Writing
 * each checkpoint to a new folder name avoids even that window.
 */
export function writeFolderAtomic(target: string, fill: (tmpDir: string) => void): void {
  const abs = path.resolve(target);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const tmp = tempSibling(abs, "tmp");
  fs.mkdirSync(tmp);
  try {
    fill(tmp);
    fsyncTree(tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const exists = fs.existsSync(abs);
  if (exists && !fs.statSync(abs).isDirectory()) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new Error(`writeFolderAtomic: ${abs} exists and is not a directory`);
  }
  if (!exists) {
    try {
      fs.renameSync(tmp, abs);
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  } else {
    const backup = tempSibling(abs, "old");
    fs.renameSync(abs, backup);
    try {
      fs.renameSync(tmp, abs);
    } catch (e) {
      // Put the old folder back so a failed save changes nothing.
      fs.renameSync(backup, abs);
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    fs.rmSync(backup, { recursive: true, force: true });
  }
  fsyncDir(path.dirname(abs));
}
