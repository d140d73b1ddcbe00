// Shared by the test/data tests: temporary folders, tiny PNGs, fixture paths.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after } from "node:test";
import { fileURLToPath } from "node:url";
import sharp from "sharp";

/** test/fixtures/data (tests run from dist/test/data; fixtures are not copied by tsc). */
export const FIXTURES = fileURLToPath(new URL("../../../test/fixtures/data", import.meta.url));
export const TINY = path.join(FIXTURES, "tiny");

/** A fresh temporary folder, removed when the test file ends. */
export function tempDir(tag = "data"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vlm-grpo-${tag}-`));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a small solid-colour PNG (creating folders) and returns its path. */
export async function writePng(file: string, width = 4, height = 3, value = 100): Promise<string> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const raw = Buffer.alloc(width * height * 3, value);
  await sharp(raw, { raw: { width, height, channels: 3 } }).png().toFile(file);
  return file;
}

/** Writes a text file (creating folders) and returns its path. */
export function writeText(file: string, text: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

/** JSONL text from objects (or raw strings, written as they are). */
export const jsonl = (rows: (object | string)[]) => rows.map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("\n") + "\n";
