// StopRequest and the exit code of a run: the first SIGINT/SIGTERM asks the
// loop to stop (no exit), a second one exits at once with 130 / 143, the
// grace period exits with the same code when the step does not finish; a run
// exits 0 only with its final model. Signals are delivered with
// process.emit (the listeners run exactly as for a real signal) and exit is
// captured, so nothing here ends the test process.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { runExitCode, SIGNAL_EXIT_CODES, StopRequest } from "../../src/train/stop.js";

function watch(graceSeconds: number) {
  const exits: number[] = [];
  const lines: string[] = [];
  const stop = new StopRequest({ graceSeconds, label: "t", write: (s) => lines.push(s), exit: (c) => exits.push(c) });
  return { stop, exits, lines };
}

test("first signal requests a stop without exiting; a second exits at once with 128 + its number", () => {
  for (const [sig, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    const w = watch(60);
    try {
      assert.equal(w.stop.requested, false);
      process.emit(sig, sig);
      assert.equal(w.stop.requested, true);
      assert.equal(w.stop.signal, sig);
      assert.deepEqual(w.exits, []);
      assert.match(w.lines.join(""), new RegExp(`t: ${sig}: finishing the current step, then saving a checkpoint \\(exit code ${code}\\)`));
      process.emit(sig, sig);
      assert.deepEqual(w.exits, [code]);
      assert.match(w.lines.join(""), new RegExp(`${sig} again: exiting now \\(exit code ${code}\\)`));
    } finally {
      w.stop.dispose();
    }
  }
  assert.deepEqual(SIGNAL_EXIT_CODES, { SIGINT: 130, SIGTERM: 143 });
});

test("when the step does not finish within the grace period the process exits with the signal's code", async () => {
  const w = watch(0.2);
  try {
    process.emit("SIGTERM", "SIGTERM");
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(w.exits, [], "not before the grace period");
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(w.exits, [143]);
    assert.match(w.lines.join(""), /did not finish within 0\.2 s of SIGTERM \(stop_timeout_s\); exiting now \(exit code 143\)/);
  } finally {
    w.stop.dispose();
  }
});

test("dispose removes the handlers and the grace timer", async () => {
  const before = process.listenerCount("SIGINT");
  const w = watch(0.1);
  assert.equal(process.listenerCount("SIGINT"), before + 1);
  process.emit("SIGINT", "SIGINT");
  w.stop.dispose();
  assert.equal(process.listenerCount("SIGINT"), before);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(w.exits, [], "a disposed request never exits");
});

test("runExitCode: 0 only with a complete final model and no signal", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-exit-"));
  const why: string[] = [];
  const say = (l: string) => why.push(l);
  assert.equal(runExitCode({ finalModelDir: null, interruptedBy: "SIGINT" }, say), 130);
  assert.equal(runExitCode({ finalModelDir: null, interruptedBy: "SIGTERM" }, say), 143);
  // A signal during the final save still reports the interruption.
  assert.equal(runExitCode({ finalModelDir: dir, interruptedBy: "SIGTERM" }, say), 143);
  assert.equal(runExitCode({ finalModelDir: null, interruptedBy: null }, say), 1);
  assert.equal(runExitCode({ finalModelDir: dir, interruptedBy: null }, say), 1);
  assert.match(why.join("\n"), /stopped before writing its final model/);
  assert.match(why.join("\n"), /is incomplete \(no config\.json\)/);
  fs.writeFileSync(path.join(dir, "config.json"), "{}");
  assert.equal(runExitCode({ finalModelDir: dir, interruptedBy: null }, say), 0);
  fs.rmSync(dir, { recursive: true, force: true });
});
