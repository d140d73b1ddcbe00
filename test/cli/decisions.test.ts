// From a trained folder to decisions, as a user runs it: SFT with a custom
// prompt writes the model card, predict asks the trained question, a bad
// image among good ones gives an error row and exit code 3, eval
// --save-thresholds stores thresholds that predict then uses, and eval and
// predict decide every image alike (one decide()).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { type RunConfig, runConfigSchema } from "../../src/config/run_config.js";
import { validate } from "../../src/config/schema.js";
import { synthesizeDataset } from "../../src/data/synth/writer.js";
import type { Example } from "../../src/data/types.js";
import { initModel } from "../../src/models/init_model.js";
import { classifyExamples } from "../../src/policy/classify.js";
import { DEFAULT_SYSTEM_PROMPT, DEFAULT_USER_PROMPT } from "../../src/data/prompt.js";
import { MODEL_CARD_FILE, readModelCard } from "../../src/policy/model_card.js";
import { loadPolicy } from "../../src/policy/policy.js";
import { runSft } from "../../src/train/sft.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const PROMPT = { system_prompt: "", user_prompt: "Moderate: {categories}. Reply <answer>...</answer>." };
let root = "";
let manifest = "";
let trained = "";
let images: string[] = [];

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", timeout: 300_000, env: { ...process.env, CI: "true" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const rows = (text: string) => text.trim().split("\n").map((l) => JSON.parse(l));

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-decisions-"));
  const ds = await synthesizeDataset({ outDir: path.join(root, "data"), n: 60, imageSize: 32, seed: 6 });
  manifest = ds.manifest;
  const base = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "base"), seed: 7 })).dir;
  const cfg: RunConfig = validate(
    runConfigSchema,
    { model: base, output_dir: path.join(root, "sft"), seed: 1, data: { path: manifest }, prompt: PROMPT, lora: { enabled: false }, sft: { max_steps: 6, micro_batch_size: 8, lr: 2e-3, warmup_ratio: 0, eval_examples: 4, log_every: 1 } },
    { file: "test config" },
  );
  trained = (await runSft(cfg, { log: () => {}, progress: false })).finalModelDir!;
  images = ["00001", "00002", "00003"].map((n) => path.join(root, "data", "images", `${n}.png`));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("a trained folder carries its prompt and categories; predict asks that question, not the default", async () => {
  const card = readModelCard(trained);
  assert.ok(card, `${MODEL_CARD_FILE} written by the final save`);
  assert.deepEqual(card.prompt, { system_prompt: "", user_prompt: PROMPT.user_prompt, allow_think: false });
  assert.deepEqual([card.categories, card.thresholds, card.trained?.base_model], [["nudity", "weapons"], null, path.join(root, "base")]);

  const policy = await loadPolicy({ modelDir: trained, prompt: {} });
  const examples: Example[] = images.map((f) => ({ id: f, image: { path: f }, labels: [], source: { file: f } }));
  let trainedPrompt: number[];
  try {
    assert.equal(policy.prompt.userPrompt, PROMPT.user_prompt);
    assert.deepEqual(Object.values(policy.promptSource), ["card", "card", "card", "card"]);
    trainedPrompt = (await classifyExamples(policy, examples, { batchSize: 8, maxNewTokens: 8 })).map((c) => c.score);
  } finally {
    policy.dispose();
  }
  // What predict asked before models carried cards: the built-in prompt.
  const asDefault = await loadPolicy({ modelDir: trained, prompt: { systemPrompt: DEFAULT_SYSTEM_PROMPT, userPrompt: DEFAULT_USER_PROMPT, categories: ["nudity", "weapons"], allowThink: false } });
  let otherPrompt: number[];
  try {
    otherPrompt = (await classifyExamples(asDefault, examples, { batchSize: 8, maxNewTokens: 8 })).map((c) => c.score);
  } finally {
    asDefault.dispose();
  }
  const r = cli(["predict", "--model", trained, "--max-new-tokens", "8", ...images]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /prompt and categories from .*vlm_grpo\.json/);
  const out = rows(r.out);
  assert.deepEqual(out.map((o) => o.image), images);
  const logit = (p: number) => Math.log(p / (1 - p));
  out.forEach((o, i) => {
    // Same process or not, the same prompt and batch give the same score; the built-in prompt another one.
    assert.ok(Math.abs(logit(o.score) - logit(trainedPrompt[i])) < 1e-6, `predict's score ${o.score} is the trained prompt's ${trainedPrompt[i]}`);
    assert.ok(Math.abs(logit(o.score) - logit(otherPrompt[i])) > 1e-3, `and not the built-in prompt's (${otherPrompt[i]})`);
    assert.equal(o.source, "answer");
    assert.equal(typeof o.flagged, "boolean");
  });
});

test("predict: bad images give error rows naming the problem, the rest are decided, exit code 3; folders, lists, CSV", async () => {
  const corrupt = path.join(root, "corrupt.png");
  fs.writeFileSync(corrupt, "this is not a PNG");
  const raw = Buffer.alloc(64 * 64 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 251;
  const jpg = await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  const cut = path.join(root, "cut.jpg");
  fs.writeFileSync(cut, jpg.subarray(0, Math.floor(jpg.length * 0.7)));
  const big = path.join(root, "big.png");
  await sharp(Buffer.alloc(200 * 200 * 3, 50), { raw: { width: 200, height: 200, channels: 3 } }).png().toFile(big);
  const missing = path.join(root, "missing.png");
  const inputs = [images[0], corrupt, cut, missing, big, images[1]];
  const r = cli(["predict", "--model", trained, "--max-new-tokens", "6", "--max-pixels", "10000", "--batch-size", "2", ...inputs]);
  assert.equal(r.code, 3, r.err);
  assert.match(r.err, /4 input\(s\) could not be read/);
  const out = rows(r.out);
  assert.deepEqual(out.map((o) => o.image), inputs);
  assert.deepEqual(out.map((o) => o.flagged === null), [false, true, true, true, true, false]);
  assert.match(out[1].error, /corrupt\.png: not a readable image/);
  assert.match(out[2].error, /cut\.jpg: cannot decode jpeg image/);
  assert.match(out[3].error, /missing\.png: image file not found/);
  assert.match(out[4].error, /big\.png: 200x200 = 40000 pixels exceeds the limit of 10000/);
  assert.equal(out[0].error, null);
  // A folder (recursive) plus a list file, written as CSV to a file: exit 0 when all images read.
  const sub = path.join(root, "folder");
  fs.mkdirSync(path.join(sub, "deeper"), { recursive: true });
  fs.copyFileSync(images[0], path.join(sub, "a.png"));
  fs.copyFileSync(images[1], path.join(sub, "deeper", "b.png"));
  const list = path.join(root, "list.txt");
  fs.writeFileSync(list, `# more\n${images[2]}\n`);
  const csv = path.join(root, "out.csv");
  const c = cli(["predict", "--model", trained, "--max-new-tokens", "6", sub, "--list", list, "--format", "csv", "--out", csv]);
  assert.equal(c.code, 0, c.err);
  assert.equal(c.out, "");
  const lines = fs.readFileSync(csv, "utf8").trim().split("\n");
  assert.equal(lines[0], "image,flagged,categories,score,threshold,source,answer_kind,answer,score_nudity,score_weapons,error");
  assert.deepEqual(lines.slice(1).map((l) => l.split(",")[0]), [path.join(sub, "a.png"), path.join(sub, "deeper", "b.png"), images[2]]);
});

test("eval --save-thresholds stores thresholds in the card; predict decides with them exactly as eval did", async () => {
  const evalOut = path.join(root, "eval");
  const common = ["--model", trained, "--data.path", manifest, "--data.val_fraction", "0.4", "--data.test_fraction", "0.3", "--eval.max_new_tokens", "6", "--eval.batch_size", "4", "--eval.report", "false"];
  const noSaved = cli(["predict", "--model", trained, "--target-recall", "0.9", images[0]]);
  assert.equal(noSaved.code, 1);
  assert.match(noSaved.err, /vlm_grpo\.json: no thresholds saved; run vlm-grpo eval --model <this folder> --save-thresholds first/);

  const ev = cli(["eval", ...common, "--out", evalOut, "--save-thresholds"]);
  assert.equal(ev.code, 0, ev.err + ev.out);
  assert.match(ev.out, /recall 95% CI/);
  assert.match(ev.out, /decisions at thresholds/);
  assert.match(ev.out, /! .*rests on \d+ (offensive|safe) images? \(< 30\)/);
  assert.match(ev.out, /thresholds saved: .*vlm_grpo\.json \(target recalls 0\.9, 0\.95, 0\.99; default 0\.95; chosen on \d+ val images\)/);
  const card = readModelCard(trained)!;
  const rec = card.thresholds!;
  assert.equal(rec.split, "val");
  assert.equal(rec.data, manifest);
  assert.deepEqual(rec.sets.map((s) => s.target_recall), [0.9, 0.95, 0.99]);
  assert.ok(Math.abs(Date.parse(rec.chosen_at) - Date.now()) < 3_600_000);
  const m = JSON.parse(fs.readFileSync(path.join(evalOut, "metrics.json"), "utf8"))[path.basename(trained)];
  assert.deepEqual(m.thresholds, JSON.parse(JSON.stringify(rec)));
  assert.ok(m.calibration !== null || typeof m.calibration_note === "string");
  assert.equal(m.recall_ci.length, 2);
  assert.equal(m.few_images, true);

  // predict with no option: the saved default set; each image decided as eval decided it.
  const preds = fs.readFileSync(path.join(evalOut, "predictions.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const files = preds.map((p) => p.imagePath as string);
  const pr = cli(["predict", "--model", trained, "--max-new-tokens", "6", "--batch-size", "4", ...files]);
  assert.equal(pr.code, 0, pr.err);
  const out = rows(pr.out);
  assert.equal(out.length, preds.length);
  out.forEach((o, i) => {
    assert.match(o.source, /^saved thresholds for recall 0\.95 \(chosen on val, \d{4}-\d\d-\d\d\)$/);
    assert.equal(o.threshold, rec.sets[1].overall.threshold);
    assert.deepEqual([o.flagged, o.categories, o.score], [preds[i].decisions.chosen.flagged, preds[i].decisions.chosen.categories, preds[i].decisions.chosen.score], `image ${files[i]}`);
  });
  // --use-answer: the answer rule, as eval's answer metrics read it.
  const ans = rows(cli(["predict", "--model", trained, "--max-new-tokens", "6", "--batch-size", "4", "--use-answer", ...files]).out);
  ans.forEach((o, i) => assert.equal(o.answer_kind, preds[i].predicted.kind));
  // --target-recall picks a saved set; an unsaved one is refused, naming the saved ones.
  const r99 = rows(cli(["predict", "--model", trained, "--max-new-tokens", "6", "--target-recall", "0.99", files[0]]).out)[0];
  assert.equal(r99.threshold, rec.sets[2].overall.threshold);
  const bad = cli(["predict", "--model", trained, "--target-recall", "0.42", files[0]]);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /no thresholds saved for target recall 0\.42; saved: 0\.9, 0\.95, 0\.99/);

  // A second evaluation reads the saved thresholds back and decides with them like predict.
  const again = cli(["eval", ...common, "--out", path.join(root, "eval2")]);
  assert.equal(again.code, 0, again.err);
  assert.match(again.out, /saved \(chosen on val, /);
  const preds2 = fs.readFileSync(path.join(root, "eval2", "predictions.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  preds2.forEach((p, i) => assert.deepEqual(p.decisions.saved, preds[i].decisions.chosen));
});
