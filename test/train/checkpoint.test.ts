import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { latestCheckpoint, listCheckpoints, resolveResume, saveCheckpoint } from "../../src/train/checkpoint.js";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "vlm-ckpt-"));

test("saves, points latest at the newest, prunes to keepLast", () => {
  const run = tmp();
  for (const step of [10, 20, 30]) saveCheckpoint(run, step, (d) => fs.writeFileSync(path.join(d, "trainer_state.json"), JSON.stringify({ step })), { keepLast: 2 });
  assert.deepEqual(listCheckpoints(run).map((c) => c.step), [20, 30]);
  assert.equal(latestCheckpoint(run)!.step, 30);
  assert.equal(resolveResume("auto", run)!.step, 30);
  assert.equal(resolveResume(path.join(run, "checkpoints", "step-00000020"), run)!.step, 20);
});

test("a save that fails midway leaves the previous checkpoint as latest and no partial folder", () => {
  const run = tmp();
  saveCheckpoint(run, 5, (d) => fs.writeFileSync(path.join(d, "trainer_state.json"), "{}"));
  assert.throws(
    () =>
      saveCheckpoint(run, 6, (d) => {
        fs.writeFileSync(path.join(d, "trainer_state.json"), "{}");
        throw new Error("disk full");
      }),
    /disk full/,
  );
  assert.equal(latestCheckpoint(run)!.step, 5);
  assert.deepEqual(fs.readdirSync(path.join(run, "checkpoints")).sort(), ["latest", "step-00000005"]);
});

test("resume errors name the path", () => {
  const run = tmp();
  assert.equal(resolveResume("auto", run), null);
  assert.throws(() => resolveResume(path.join(run, "nope"), run), /nope does not exist/);
  assert.throws(() => resolveResume(run, run), /neither a checkpoint folder/);
});
