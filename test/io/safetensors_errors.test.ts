// Corrupt, truncated and inconsistent safetensors files: each must fail
// with an Error naming the file, the tensor at fault (when one is) and what
// was expected, before any tensor is read.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";

import { loadSafetensors, readSafetensorsHeader, SafetensorsFormatError, saveSafetensors } from "../../src/io/safetensors.js";
import { arange, liveTensors, tidy } from "../../src/torch/index.js";
import { tempDir, writeRawSafetensors } from "./helpers.js";

const dir = tempDir("st-errors");
let n = 0;
const fresh = () => path.join(dir, `case${n++}.safetensors`);

/** Asserts that reading `file` (header and full load) fails with a message matching every pattern. */
function assertBad(file: string, ...patterns: (RegExp | string)[]): void {
  const live0 = liveTensors();
  for (const read of [() => readSafetensorsHeader(file), () => loadSafetensors(file)]) {
    assert.throws(read, (e: unknown) => {
      assert.ok(e instanceof SafetensorsFormatError, `expected a SafetensorsFormatError, got ${String(e)}`);
      assert.ok(e.message.includes(file), `message should name the file: ${e.message}`);
      for (const p of patterns) {
        if (typeof p === "string") assert.ok(e.message.includes(p), `message should include ${JSON.stringify(p)}: ${e.message}`);
        else assert.match(e.message, p);
      }
      return true;
    });
  }
  assert.equal(liveTensors(), live0, "no tensor may be left behind");
}

const entry = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });
const header = (o: Record<string, unknown>) => JSON.stringify(o);

describe("safetensors header errors", () => {
  test("a file shorter than the 8-byte length prefix", () => {
    const f = fresh();
    fs.writeFileSync(f, Buffer.from([1, 2, 3]));
    assertBad(f, "3 bytes, shorter than the 8-byte header length prefix");
  });

  test("an empty file", () => {
    const f = fresh();
    fs.writeFileSync(f, Buffer.alloc(0));
    assertBad(f, "0 bytes");
  });

  test("a header length larger than the file", () => {
    assertBad(writeRawSafetensors(fresh(), "{}", new Uint8Array(0), 500n), "header length 500 runs past the end of the 10-byte file");
  });

  test("an absurd header length (not a safetensors file)", () => {
    assertBad(writeRawSafetensors(fresh(), "{}", new Uint8Array(0), 0xffffffffffffffffn), /exceeds the 100000000-byte limit/);
  });

  test("a header that is not JSON", () => {
    assertBad(writeRawSafetensors(fresh(), '{"w": {"dtype": "F32",'), "header is not valid JSON");
  });

  test("a header that is not UTF-8", () => {
    assertBad(writeRawSafetensors(fresh(), new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), "not valid UTF-8");
  });

  test("a header that is JSON but not an object", () => {
    assertBad(writeRawSafetensors(fresh(), "[1, 2]"), "must be a JSON object, got an array");
    assertBad(writeRawSafetensors(fresh(), "null"), "must be a JSON object, got null");
  });

  test("a tensor record that is not an object, or lacks fields", () => {
    assertBad(writeRawSafetensors(fresh(), header({ w: 5 })), "tensor 'w'", "expected {dtype, shape, data_offsets}");
    assertBad(writeRawSafetensors(fresh(), header({ w: { dtype: "F32", data_offsets: [0, 0] } })), "tensor 'w'", '"shape" must be an array');
    assertBad(writeRawSafetensors(fresh(), header({ w: { dtype: "F32", shape: [0] } })), "tensor 'w'", '"data_offsets" must be [begin, end]');
    assertBad(writeRawSafetensors(fresh(), header({ w: entry("F32", [-1], 0, 0) })), "tensor 'w'", "non-negative integers");
    assertBad(writeRawSafetensors(fresh(), header({ w: entry("F32", [1], 4, 0) })), "tensor 'w'", "0 <= begin <= end");
  });

  test("an unknown dtype", () => {
    assertBad(writeRawSafetensors(fresh(), header({ "layer.w": entry("F128", [1], 0, 16) }), new Uint8Array(16)), "tensor 'layer.w'", "unknown dtype 'F128'", "expected one of");
  });

  test("bad metadata: not an object, or a non-string value", () => {
    assertBad(writeRawSafetensors(fresh(), header({ __metadata__: [1] })), '"__metadata__" must be an object');
    assertBad(writeRawSafetensors(fresh(), header({ __metadata__: { step: 3 } })), "value for 'step' must be a string");
  });

  test("offsets whose span does not match shape x element size", () => {
    assertBad(
      writeRawSafetensors(fresh(), header({ w: entry("BF16", [2, 3], 0, 8) }), new Uint8Array(8)),
      "tensor 'w'",
      "shape [2, 3] of BF16 needs 12 bytes but data_offsets [0, 8] span 8",
    );
  });

  test("overlapping offsets name both tensors", () => {
    const h = header({ a: entry("F32", [2], 0, 8), b: entry("F32", [2], 4, 12) });
    assertBad(writeRawSafetensors(fresh(), h, new Uint8Array(12)), "tensor 'b'", "overlap tensor 'a'");
  });

  test("a gap between tensors, or before the first", () => {
    const gap = header({ a: entry("F32", [1], 0, 4), b: entry("F32", [1], 8, 12) });
    assertBad(writeRawSafetensors(fresh(), gap, new Uint8Array(12)), "tensor 'b'", "tensor 'a' ends at 4: a gap of 4 bytes");
    const lead = header({ a: entry("U8", [2], 2, 4) });
    assertBad(writeRawSafetensors(fresh(), lead, new Uint8Array(4)), "tensor 'a'", "the data starts at 0");
  });

  test("trailing bytes after the last tensor", () => {
    assertBad(writeRawSafetensors(fresh(), header({ a: entry("U8", [2], 0, 2) }), new Uint8Array(5)), "3 bytes after the last tensor are not covered");
  });

  test("a truncated data section names the tensor that runs past the end", () => {
    const good = fresh();
    tidy(() => saveSafetensors(good, { first: arange(16, { dtype: "float32" }), second: arange(16, { dtype: "float32" }) }));
    const bytes = fs.readFileSync(good);
    const cut = fresh();
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
    assertBad(cut, "tensor 'second'", "run past the end of the data", "truncated");
  });

  test("a truncated header (cut inside the JSON)", () => {
    const good = fresh();
    tidy(() => saveSafetensors(good, { w: arange(4, { dtype: "float32" }) }));
    const cut = fresh();
    fs.writeFileSync(cut, fs.readFileSync(good).subarray(0, 20));
    assertBad(cut, /header length \d+ runs past the end of the 20-byte file/);
  });

  test("a dtype the format knows but libtorch 1.13 lacks reads its header and fails clearly on load", () => {
    const f = writeRawSafetensors(fresh(), header({ u: entry("U32", [2], 0, 8) }), new Uint8Array(8));
    assert.equal(readSafetensorsHeader(f).entries.get("u")!.byteLength, 8);
    assert.throws(() => loadSafetensors(f), (e: Error) => e.message.includes(f) && e.message.includes("tensor 'u'") && e.message.includes("U32 cannot be loaded"));
  });

  test("a missing file is an error naming the path", () => {
    const f = path.join(dir, "absent.safetensors");
    assert.throws(() => loadSafetensors(f), (e: Error) => e.message.includes(f));
  });
});

describe("safetensors odd paths", () => {
  test("a folder where a file is expected", () => {
    const sub = path.join(dir, "a-folder.safetensors");
    fs.mkdirSync(sub);
    assertBad(sub, "not a regular file");
  });
});
