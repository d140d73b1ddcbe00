import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { saveSafetensors } from "../../src/io/safetensors.js";
import { dispose, tensor } from "../../src/torch/index.js";
import { latestCheckpoint, listCheckpoints, resolveResume, saveCheckpoint } from "../../src/train/checkpoint.js";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "vlm-ckpt-"));

/** Writes the files of a (full fine-tuning) checkpoint of `step` that checkCheckpoint accepts. */
function fillCheckpoint(step: number) {
  return (d: string) => {
    fs.writeFileSync(path.join(d, "trainer_state.json"), JSON.stringify({ kind: "sft", step, lora: false }));
    fs.writeFileSync(path.join(d, "config.yaml"), "seed: 0\n");
    const t = tensor([1, 2, 3]);
    for (const f of ["optimizer", "rng", "model"]) saveSafetensors(path.join(d, `${f}.safetensors`), { t });
    dispose([t]);
  };
}

test("saves, points latest at the newest, prunes to keepLast", () => {
  const run = tmp();
  for (const step of [10, 20, 30]) saveCheckpoint(run, step, fillCheckpoint(step), { keepLast: 2 });
  assert.deepEqual(listCheckpoints(run).map((c) => c.step), [20, 30]);
  assert.equal(latestCheckpoint(run)!.step, 30);
  assert.equal(resolveResume("auto", run)!.step, 30);
  assert.equal(resolveResume(path.join(run, "checkpoints", "step-00000020"), run)!.step, 20);
});

test("a save that fails midway leaves the previous checkpoint as latest and no partial folder", () => {
  const run = tmp();
  saveCheckpoint(run, 5, fillCheckpoint(5));
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
