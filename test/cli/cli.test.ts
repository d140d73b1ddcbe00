// The `vlm-grpo` command end to end, as a user runs it: help, config errors,
// init-model, generate, predict, data synth/check, and a mini demo run.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
let tmp = "";
before(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-cli-"))));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[], timeout = 120_000) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", timeout, env: { ...process.env, CI: "true" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("help lists the commands", () => {
  const r = cli(["--help"]);
  assert.equal(r.code, 0);
  for (const c of ["demo", "data", "init-model", "sft", "grpo", "eval", "predict", "generate"]) assert.match(r.out, new RegExp(`\\b${c}\\b`));
  const s = cli(["grpo", "--help"]);
  assert.equal(s.code, 0);
  assert.match(s.out, /grpo\.beta/);
});

test("config errors name the key, the closest valid key and the expected type", () => {
  const unknown = cli(["sft", "--sft.lrr", "1e-4"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /sft\.lrr/);
  assert.match(unknown.err, /\blr\b/);
  const wrong = cli(["grpo", "--grpo.beta", "lots"]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.err, /grpo\.beta/);
  assert.match(wrong.err, /number/);
  const yaml = path.join(tmp, "bad.yaml");
  fs.writeFileSync(yaml, "grpo:\n  num_generation: 4\n");
  const fromFile = cli(["grpo", "--config", yaml]);
  assert.equal(fromFile.code, 2);
  assert.match(fromFile.err, /bad\.yaml/);
  assert.match(fromFile.err, /num_generations/);
});

test("init-model, generate, predict, data synth and data check", () => {
  const model = path.join(tmp, "model");
  const init = cli(["init-model", "--arch", "idefics3", "--preset", "tiny", "--out", model, "--seed", "1"]);
  assert.equal(init.code, 0, init.err);
  for (const f of ["config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json"]) {
    assert.ok(fs.existsSync(path.join(model, f)), `init-model wrote ${f}`);
  }
  // the demo's from-scratch init: std recorded in config.json; bad values refused by name
  const wide = path.join(tmp, "model-wide");
  const initWide = cli(["init-model", "--preset", "tiny", "--out", wide, "--vision-init", "siglip", "--init-std", "0.08"]);
  assert.equal(initWide.code, 0, initWide.err);
  assert.equal(JSON.parse(fs.readFileSync(path.join(wide, "config.json"), "utf8")).text_config.initializer_range, 0.08);
  const badInit = cli(["init-model", "--preset", "tiny", "--out", path.join(tmp, "x"), "--vision-init", "kaiming"]);
  assert.equal(badInit.code, 2);
  assert.match(badInit.err, /--vision-init/);
  const data = path.join(tmp, "data");
  const synth = cli(["data", "synth", "--out", data, "--n", "20", "--image-size", "32", "--seed", "2"]);
  assert.equal(synth.code, 0, synth.err);
  const check = cli(["data", "check", data]);
  assert.equal(check.code, 0, check.err);
  assert.match(check.out, /safe/);
  const image = path.join(data, "images", "00000.png");
  const gen = cli(["generate", "--model", model, "--image", image, "--prompt", "What is shown?", "--max-new-tokens", "4", "--temperature", "1", "--seed", "3"]);
  assert.equal(gen.code, 0, gen.err);
  const gen2 = cli(["generate", "--model", model, "--image", image, "--prompt", "What is shown?", "--max-new-tokens", "4", "--temperature", "1", "--seed", "3"]);
  assert.equal(gen2.out, gen.out, "same seed, same completion");
  const pred = cli(["predict", "--model", model, image, path.join(data, "images", "00001.png")]);
  assert.equal(pred.code, 0, pred.err);
  const lines = pred.out.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  for (const l of lines) {
    assert.ok(["safe", "offensive", "unparseable"].includes(l.answer_kind));
    assert.equal(typeof l.flagged, "boolean");
    assert.ok(l.score >= 0 && l.score <= 1);
  }
  const missing = cli(["predict", "--model", model, path.join(tmp, "nope.png")]);
  assert.equal(missing.code, 3);
  assert.match(JSON.parse(missing.out).error, /nope\.png: image file not found/);
});

test("a mini demo writes the base/sft/grpo comparison with the required metrics", () => {
  const out = path.join(tmp, "demo");
  const r = cli(["demo", "--out", out, "--preset", "tiny", "--n", "48", "--sft-epochs", "1", "--grpo-steps", "2", "--ablation", "symmetric"], 300_000);
  assert.equal(r.code, 0, r.err + r.out);
  const m = JSON.parse(fs.readFileSync(path.join(out, "metrics.json"), "utf8"));
  assert.deepEqual(Object.keys(m), ["base", "sft", "grpo", "grpo_symmetric"]);
  for (const run of Object.values(m) as Record<string, unknown>[]) {
    for (const k of ["recall", "precision", "fpr", "f1", "f2", "accuracy", "unparseable_rate"]) assert.ok(k in run, `metrics has ${k}`);
  }
  assert.ok(fs.existsSync(path.join(out, "report.html")));
  assert.match(r.out, /recall/);
  // The price by subset counts the test split's hard and normal images as the manifest marks them.
  const testRows = fs.readFileSync(path.join(out, "data", "manifest.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((x) => x.split === "test");
  for (const subset of ["normal", "hard"]) {
    const rows = testRows.filter((x) => (x.hard === true) === (subset === "hard"));
    assert.ok(rows.length > 0, `the seeded mini set has ${subset} test images`);
    const offensive = rows.filter((x) => x.labels.length > 0).length;
    for (const run of ["sft", "grpo", "grpo_symmetric"]) {
      const line = new RegExp(`^${run}\\s+${subset}\\s+\\d+/(\\d+)\\s+\\S+\\s+(\\d+)\\s`, "m").exec(r.out);
      assert.ok(line, `a ${subset} row for ${run} in:\n${r.out}`);
      assert.deepEqual([Number(line[1]), Number(line[2])], [offensive, rows.length - offensive], `${run} ${subset}: offensive and safe images`);
    }
  }
});
