import assert from "node:assert/strict";
import { test } from "node:test";
import { formatDuration, formatField, formatRate, Progress, type ProgressSnapshot, setProgressContext } from "../../src/io/progress.js";

/** A stream that records writes, and a clock the test moves by hand. */
function fakes(isTTY: boolean, columns?: number) {
  const writes: string[] = [];
  const stream = { write: (s: string) => writes.push(s), isTTY, columns };
  const clock = { t: 1_000_000 };
  return { writes, stream, clock, now: () => clock.t };
}

test("formatDuration, formatRate, formatField", () => {
  assert.equal(formatDuration(0), "0:00");
  assert.equal(formatDuration(5.4), "0:05");
  assert.equal(formatDuration(59.6), "1:00");
  assert.equal(formatDuration(62), "1:02");
  assert.equal(formatDuration(3723), "1:02:03");
  assert.equal(formatDuration(36000), "10:00:00");
  assert.equal(formatDuration(NaN), "--:--");
  assert.equal(formatDuration(Infinity), "--:--");
  assert.equal(formatRate(3.1666), "3.17 it/s");
  assert.equal(formatRate(0.25, "step"), "4.00 s/step");
  assert.equal(formatRate(NaN), "-- it/s");
  assert.equal(formatField(0.41234567), "0.4123");
  assert.equal(formatField(12.34567), "12.35");
  assert.equal(formatField(3), "3");
  assert.equal(formatField(0.00001234), "1.23e-5");
  assert.equal(formatField("warmup"), "warmup");
});

test("TTY: redraws one line with bar, percent, rate, elapsed, ETA and fields; throttled; done ends the line", () => {
  const f = fakes(true);
  const p = new Progress({ total: 100, label: "train", stream: f.stream, now: f.now, barWidth: 10 });
  f.clock.t += 50;
  p.tick(); // 50 ms after start: under the 100 ms interval, no redraw
  assert.equal(f.writes.length, 0);
  f.clock.t += 9_950; // 10 s elapsed, 25 done -> 2.5 it/s, 75 left -> 30 s
  p.tick(24, { loss: 0.41234, reward: 0.75 });
  assert.equal(f.writes.length, 1);
  assert.equal(f.writes[0], "\rtrain [###.......]  25% 25/100 2.50 it/s elapsed 0:10 eta 0:30 loss=0.4123 reward=0.75\x1b[K");
  f.clock.t += 20; // too soon
  p.tick(1);
  assert.equal(f.writes.length, 1);
  f.clock.t += 29_980; // 40 s elapsed, 100 done: the last tick always draws
  p.tick(74, { loss: 0.2 });
  assert.equal(f.writes[1], "\rtrain [##########] 100% 100/100 2.50 it/s elapsed 0:40 eta 0:00 loss=0.2 reward=0.75\x1b[K");
  p.done();
  assert.equal(f.writes[2], "\rtrain [##########] 100% 100/100 2.50 it/s elapsed 0:40 eta 0:00 loss=0.2 reward=0.75\x1b[K\n");
  p.done();
  p.tick();
  assert.equal(f.writes.length, 3);
});

test("TTY lines are cut to the terminal width", () => {
  const f = fakes(true, 30);
  const p = new Progress({ total: 10, label: "eval", stream: f.stream, now: f.now });
  f.clock.t += 1000;
  p.tick(1, { a_long_field_name: 123456 });
  assert.equal(f.writes[0].length, "\r".length + 29 + "\x1b[K".length);
});

test("non-TTY: plain lines every k percent or every interval, same figures, and a done line", () => {
  const f = fakes(false);
  const p = new Progress({ total: 200, label: "eval", stream: f.stream, now: f.now, intervalMs: 60_000, everyPercent: 25 });
  for (let i = 0; i < 49; i++) {
    f.clock.t += 100;
    p.tick();
  }
  assert.equal(f.writes.length, 0); // 24.5%: no boundary crossed, interval not reached
  f.clock.t += 100;
  p.tick(1, { acc: 0.5 }); // 50/200 = 25% after 5 s: 10 it/s, 150 left -> 15 s
  assert.deepEqual(f.writes, ["eval: 25% 50/200 10.00 it/s elapsed 0:05 eta 0:15 acc=0.5\n"]);
  f.clock.t += 60_000; // interval passes with one more tick
  p.tick();
  assert.equal(f.writes.length, 2);
  assert.equal(f.writes[1], "eval: 25% 51/200 1.27 s/it elapsed 1:05 eta 3:10 acc=0.5\n"); // 65/51 s per item; 149 * 65/51 = 189.9 s left
  p.tick(149);
  assert.equal(f.writes.length, 3); // crossed 50%, 75% and 100% in one tick: one line
  assert.match(f.writes[2], /^eval: 100% 200\/200 /);
  p.done();
  assert.match(f.writes[3], /^eval: 100% 200\/200 3\.08 it\/s elapsed 1:05 eta 0:00 acc=0\.5 \(done\)\n$/);
  assert.ok(!f.writes.some((w) => w.includes("\r") || w.includes("\x1b")));
});

test("unknown total: count, rate and elapsed only", () => {
  const f = fakes(false);
  const p = new Progress({ label: "gen", stream: f.stream, now: f.now, intervalMs: 1000, unit: "img" });
  f.clock.t += 2000;
  p.tick(8);
  assert.deepEqual(f.writes, ["gen: 8 4.00 img/s elapsed 0:02\n"]);
});

test("isTTY defaults to the stream's flag", () => {
  const f = fakes(true);
  const p = new Progress({ total: 2, stream: f.stream, now: f.now });
  f.clock.t += 1000;
  p.tick(2);
  assert.ok(f.writes[0].startsWith("\rprogress ["));
});

test("setProgressContext: an outer tracker sees each line's figures and its text goes first, until removed", () => {
  const f = fakes(false);
  const seen: ProgressSnapshot[] = [];
  setProgressContext((snap) => {
    seen.push(snap);
    return "demo 3/5 sft, about 2:00 left";
  });
  try {
    const p = new Progress({ total: 4, label: "sft", stream: f.stream, now: f.now, everyPercent: 50 });
    f.clock.t += 2000;
    p.tick(2);
    assert.deepEqual(f.writes, ["[demo 3/5 sft, about 2:00 left] sft: 50% 2/4 1.00 it/s elapsed 0:02 eta 0:02\n"]);
    assert.deepEqual(seen, [{ label: "sft", count: 2, total: 4, elapsedSeconds: 2 }]);
  } finally {
    setProgressContext(null);
  }
  const g = fakes(false);
  const q = new Progress({ total: 2, label: "eval", stream: g.stream, now: g.now });
  g.clock.t += 1000;
  q.tick(2);
  assert.equal(g.writes[0], "eval: 100% 2/2 2.00 it/s elapsed 0:01 eta 0:00\n");
});
