// Shared by the test/io tests: temporary folders and raw safetensors files.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after } from "node:test";

/** A fresh temporary folder, removed when the test file ends. */
export function tempDir(tag = "io"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vlm-grpo-${tag}-`));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Writes a safetensors file from a header given as JSON text (or any bytes)
 * and a data section, with the length prefix computed unless `headerLength`
 * overrides it: the raw material of the corrupt-file tests.
 */
export function writeRawSafetensors(file: string, header: string | Uint8Array, data: Uint8Array = new Uint8Array(0), headerLength?: bigint): string {
  const h = typeof header === "string" ? Buffer.from(header, "utf8") : Buffer.from(header);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLength ?? BigInt(h.byteLength));
  fs.writeFileSync(file, Buffer.concat([prefix, h, data]));
  return file;
}

/** Names of the entries in a folder, sorted. */
export function listDir(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}
