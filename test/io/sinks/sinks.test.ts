import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { crc32c, maskCrc, maskedCrc32c, unmaskCrc } from "../../../src/io/sinks/crc32c.js";
import { JsonlSink, readJsonl } from "../../../src/io/sinks/jsonl.js";
import { MultiSink } from "../../../src/io/sinks/multi.js";
import { decodeEvent, encodeEvent, FILE_VERSION, readEventFile, readRecords, TensorBoardSink } from "../../../src/io/sinks/tensorboard.js";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "vlm-sinks-"));

test("crc32c matches the RFC 3720 (iSCSI) test vectors", () => {
  assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

test("masking is TFRecord's rotate-and-add and unmask inverts it", () => {
  for (const c of [0, 1, 0xe3069283, 0xffffffff, 0x12345678]) assert.equal(unmaskCrc(maskCrc(c)), c);
  // Every TF event file starts with a 24-byte record; its masked length CRC is a3 7f 4b 22 on disk.
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(24n);
  assert.equal(maskedCrc32c(len), 0x224b7fa3);
});

// Bytes of a known-good event file: tensorboard_logger's test_serialization
// (wall_time 256.5; file_version event, then v/1 = 1.5 at step 1 and v/22 = 16 at step 2).
const REFERENCE_HEX =
  "1800000000000000a37f4b220900000000000870401a0d627261696e2e4576656e743a32bc98212b" +
  "19000000000000008bf1082809000000000008704010012a0c0a0a0a03762f31150000c03f2cecc087" +
  "1a00000000000000129bd82d09000000000008704010022a0d0a0b0a04762f323215000080418fa3b688";

test("TensorBoardSink writes byte-for-byte the reference event file", () => {
  const dir = tmp();
  const sink = new TensorBoardSink(dir, { now: () => 256_500, hostname: "host" });
  sink.log(1, { "v/1": 1.5 }, 256.5);
  sink.log(2, { "v/22": 16 }, 256.5);
  sink.close();
  assert.equal(path.basename(sink.path), "events.out.tfevents.256.host");
  assert.equal(fs.readFileSync(sink.path).toString("hex"), REFERENCE_HEX);
});

test("event file round trip: file_version first, then steps, tags and float32 values", () => {
  const dir = tmp();
  let t = 1_700_000_000_000;
  const sink = new TensorBoardSink(dir, { now: () => (t += 250) });
  sink.log(0, { "train/loss": 2.5, "train/reward": -0.125 });
  sink.log(7, { "train/loss": 0.1, nan: NaN });
  sink.log(-3, { x: 1 }, 12.75);
  sink.log(1e12, { big: 3e38 });
  sink.log(5, {}); // nothing to write
  sink.close();
  assert.match(path.basename(sink.path), /^events\.out\.tfevents\.1700000000\./);
  const evs = readEventFile(sink.path);
  assert.equal(evs.length, 5);
  assert.deepEqual(evs[0], { wall_time: 1_700_000_000.25, step: 0, file_version: FILE_VERSION });
  assert.equal(evs[1].step, 0);
  assert.equal(evs[1].wall_time, 1_700_000_000.5);
  assert.deepEqual(evs[1].values, [
    { tag: "train/loss", simple_value: 2.5 },
    { tag: "train/reward", simple_value: -0.125 },
  ]);
  assert.equal(evs[2].step, 7);
  assert.equal(evs[2].values![0].simple_value, Math.fround(0.1));
  assert.ok(Number.isNaN(evs[2].values![1].simple_value));
  assert.equal(evs[3].step, -3);
  assert.equal(evs[3].wall_time, 12.75);
  assert.equal(evs[4].step, 1e12);
  assert.equal(evs[4].values![0].simple_value, Math.fround(3e38));
  assert.throws(() => sink.log(8, { a: 1 }), /after close/);
});

test("a second sink in the same second gets its own file", () => {
  const dir = tmp();
  const a = new TensorBoardSink(dir, { now: () => 5000, hostname: "h" });
  const b = new TensorBoardSink(dir, { now: () => 5000, hostname: "h" });
  a.close();
  b.close();
  assert.notEqual(a.path, b.path);
  assert.equal(fs.readdirSync(dir).length, 2);
});

test("the reader rejects corrupted and truncated files, naming file and offset", () => {
  const dir = tmp();
  const sink = new TensorBoardSink(dir);
  sink.log(1, { a: 1 });
  sink.close();
  const good = fs.readFileSync(sink.path);
  const bad = Buffer.from(good);
  bad[bad.length - 6] ^= 0x01; // flip a bit in the second record's data
  const f = path.join(dir, "bad");
  fs.writeFileSync(f, bad);
  assert.throws(() => readRecords(f), (e: Error) => e.message.includes(f) && /data CRC mismatch in record at byte 40/.test(e.message));
  fs.writeFileSync(f, good.subarray(0, good.length - 3));
  assert.throws(() => readRecords(f), /truncated record at byte 40/);
  const badLen = Buffer.from(good);
  badLen[0] ^= 0x01;
  fs.writeFileSync(f, badLen);
  assert.throws(() => readRecords(f), /length CRC mismatch at byte 0/);
});

test("decodeEvent skips unknown fields", () => {
  const ev = encodeEvent({ wall_time: 1.5, step: 3, values: [{ tag: "t", simple_value: 2 }] });
  // Append field 4 (bytes) and field 6 (varint), which our Event does not model.
  const extra = Buffer.concat([Buffer.from(ev), Buffer.from([0x22, 0x02, 0x61, 0x62, 0x30, 0x05])]);
  assert.deepEqual(decodeEvent(extra), { wall_time: 1.5, step: 3, values: [{ tag: "t", simple_value: 2 }] });
});

test("JsonlSink appends one object per line and survives NaN and a torn last line", () => {
  const dir = tmp();
  const file = path.join(dir, "sub", "metrics.jsonl");
  const s1 = new JsonlSink(file);
  s1.log(1, { loss: 0.5 }, 100);
  s1.log(2, { loss: NaN, reward: Infinity }, 101);
  s1.close();
  const s2 = new JsonlSink(file); // reopening appends
  s2.log(3, { loss: 0.25 }, 102.5);
  s2.close();
  const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n");
  assert.equal(lines.length, 3);
  assert.deepEqual(JSON.parse(lines[0]), { step: 1, time: 100, metrics: { loss: 0.5 } });
  assert.deepEqual(JSON.parse(lines[1]).metrics, { loss: "NaN", reward: "Infinity" });
  fs.appendFileSync(file, '{"step": 4, "ti');
  const recs = readJsonl(file);
  assert.deepEqual(recs.map((r) => r.step), [1, 2, 3]);
  assert.ok(Number.isNaN(recs[1].metrics.loss));
  assert.equal(recs[1].metrics.reward, Infinity);
  assert.equal(recs[2].time, 102.5);
  fs.writeFileSync(file, '{"step":1,"time":1,"metrics":{}}\nnot json\n{"step":2,"time":1,"metrics":{}}\n');
  assert.throws(() => readJsonl(file), (e: Error) => e.message.startsWith(`${file}:2:`));
});

test("sinks reject bad input naming the key", () => {
  const s = new JsonlSink(path.join(tmp(), "m.jsonl"));
  assert.throws(() => s.log(1.5, { a: 1 }), /step must be an integer, got 1.5/);
  assert.throws(() => s.log(1, { a: "x" as unknown as number }), /metric "a" at step 1 must be a number, got string/);
  s.close();
});

test("MultiSink fans out to every sink and closes all even if one fails", () => {
  const dir = tmp();
  const j = new JsonlSink(path.join(dir, "m.jsonl"));
  const tb = new TensorBoardSink(path.join(dir, "tb"));
  const calls: string[] = [];
  const failing = { log: () => calls.push("log"), flush: () => calls.push("flush"), close: () => { throw new Error("boom"); } };
  const m = new MultiSink([j, failing, tb]);
  m.log(4, { loss: 1 }, 50);
  m.flush();
  assert.throws(() => m.close(), /boom/);
  assert.deepEqual(calls, ["log", "flush"]);
  assert.deepEqual(readJsonl(j.path)[0], { step: 4, time: 50, metrics: { loss: 1 } });
  const evs = readEventFile(tb.path);
  assert.deepEqual(evs[1], { wall_time: 50, step: 4, values: [{ tag: "loss", simple_value: 1 }] });
  assert.throws(() => tb.log(5, { a: 1 }), /after close/); // tb was closed despite the failure before it
});
