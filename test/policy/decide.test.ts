// The one decision function and the saved thresholds it reads: the answer and
// threshold rules on hand-made classifications, threshold choice on a known
// set, a threshold record's round trip through a model card, and the rules a
// card gives predict's options.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { chooseThresholds, figuresAt, type LabelledClassification } from "../../src/eval/choose_thresholds.js";
import type { Classification } from "../../src/policy/classify.js";
import { decide, ruleFromCard, ruleFromSet } from "../../src/policy/decide.js";
import { MODEL_CARD_FILE, makeModelCard, readModelCard, saveThresholds, writeModelCard } from "../../src/policy/model_card.js";
import { calibrate } from "../../src/policy/thresholds.js";

const CATS = ["nudity", "weapons"];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-decide-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cls(id: string, answer: "safe" | "unparseable" | string[], score: number, nudity: number, weapons: number): Classification {
  const parsed = answer === "safe" ? { kind: "safe" as const, hasThink: false } : answer === "unparseable" ? { kind: "unparseable" as const, reason: "x" } : { kind: "offensive" as const, categories: answer, hasThink: false };
  return { id, answer: "", parsed, score, categoryScores: { nudity, weapons } };
}

test("answer rule: the parsed answer decides; unparseable is flagged for review unless told to pass", () => {
  assert.deepEqual(
    [cls("a", ["weapons"], 0.1, 0, 0), cls("b", "safe", 0.9, 0, 0), cls("c", "unparseable", 0.5, 0, 0)].map((c) => {
      const d = decide(c, { kind: "answer" });
      return [d.flagged, d.categories, d.source, d.answerKind];
    }),
    [
      [true, ["weapons"], "answer", "offensive"],
      [false, [], "answer", "safe"],
      [true, [], "answer", "unparseable"],
    ],
  );
  assert.equal(decide(cls("c", "unparseable", 0.5, 0, 0), { kind: "answer", unparseable: "pass" }).flagged, false);
  const err = decide({ ...cls("e", "safe", Number.NaN, 0, 0), error: "e.png: image file not found" }, { kind: "answer" });
  assert.deepEqual([err.flagged, err.score, err.answerKind, err.error], [null, null, "error", "e.png: image file not found"]);
});

test("threshold rule: the calibrated overall score flags; category thresholds name the categories of flagged images", () => {
  const calibration = { method: "platt" as const, a: 2, b: -1 };
  const rule = { kind: "threshold" as const, overall: 0.5, perCategory: { weapons: 0.6 }, calibration, source: "test" };
  // raw 0.7 -> sigmoid(2 logit(0.7) - 1) = 0.6686 >= 0.5: flagged; weapons 0.2 < 0.6, so the answer's categories.
  const a = decide(cls("a", ["nudity"], 0.7, 0.9, 0.2), rule);
  assert.ok(Math.abs(a.score! - 1 / (1 + Math.exp(-(2 * Math.log(0.7 / 0.3) - 1)))) < 1e-12);
  assert.deepEqual([a.flagged, a.categories, a.threshold, a.source], [true, ["nudity"], 0.5, "test"]);
  // Flagged, and weapons 0.65 >= 0.6: named weapons, whatever the answer said.
  assert.deepEqual([decide(cls("b", "safe", 0.7, 0.1, 0.65), rule).flagged, decide(cls("b", "safe", 0.7, 0.1, 0.65), rule).categories], [true, ["weapons"]]);
  // raw 0.5 -> 0.269 < 0.5: passed, even with a weapons score over its threshold and an answer naming weapons.
  const c = decide(cls("c", ["weapons"], 0.5, 0.1, 0.9), rule);
  assert.deepEqual([c.flagged, c.categories], [false, []]);
  // Exactly at the threshold counts (>=); flagged with no category when neither the scores nor the answer name one.
  const d = decide(cls("d", "safe", 0.5, 0, 0), { ...rule, calibration: null });
  assert.deepEqual([d.flagged, d.categories], [true, []]);
});

// Ten images: scores and labels chosen so the thresholds are known.
//   offensive score: positives 0.9 0.8 0.6 0.4, negatives 0.7 0.5 0.3 0.2 0.1 0.05
//   weapons score:   weapons images (ids p1, p3) 0.8 0.3; everything else 0.1 or less
const ITEMS: LabelledClassification[] = [
  [0.9, ["nudity"], 0.9, 0.1],
  [0.8, ["weapons"], 0.1, 0.8],
  [0.6, ["nudity"], 0.7, 0.05],
  [0.4, ["weapons"], 0.1, 0.3],
  [0.7, [], 0.2, 0.1],
  [0.5, [], 0.1, 0.1],
  [0.3, [], 0.1, 0.05],
  [0.2, [], 0.1, 0.05],
  [0.1, [], 0.0, 0.0],
  [0.05, [], 0.0, 0.0],
].map(([s, labels, n, w], i) => ({ classification: cls(`i${i}`, "safe", s as number, n as number, w as number), labels: labels as string[] }));

test("chooseThresholds: the highest threshold reaching each target recall, per category too, with Wilson intervals", () => {
  const rec = chooseThresholds(ITEMS, { categories: CATS, targetRecalls: [0.5, 1], defaultTargetRecall: 0.75, calibration: null, minSupport: 3, split: "val", data: "d.jsonl", now: new Date("2026-01-02T00:00:00Z") })!;
  assert.deepEqual(rec.sets.map((s) => s.target_recall), [0.5, 0.75, 1]);
  const [s50, s75, s100] = rec.sets;
  // recall 0.5: 0.9 and 0.8 are the top two scores, both positive -> threshold 0.8, FPR 0/6.
  assert.deepEqual([s50.overall.threshold, s50.overall.recall.count, s50.overall.fpr.count], [0.8, 2, 0]);
  // recall 0.75: 0.9 0.8 (0.7 neg) 0.6 -> threshold 0.6, FPR 1/6.
  assert.deepEqual([s75.overall.threshold, s75.overall.recall.count, s75.overall.fpr.count, s75.overall.fpr.of], [0.6, 3, 1, 6]);
  assert.ok(Math.abs(s75.overall.precision! - 0.75) < 1e-12);
  // recall 1: down to 0.4 -> FPR 2/6 (0.7, 0.5).
  assert.deepEqual([s100.overall.threshold, s100.overall.fpr.count], [0.4, 2]);
  // weapons at recall 1: its two images score 0.8 and 0.3 -> threshold 0.3; nudity at 0.5: 0.9.
  assert.equal(s100.per_category.weapons!.threshold, 0.3);
  assert.equal(s50.per_category.nudity!.threshold, 0.9);
  // Intervals match the Wilson values of their counts; few_images below minSupport (4 positives >= 3, fine).
  assert.deepEqual([s75.overall.recall.of, s75.overall.few_images], [4, false]);
  assert.equal(s75.per_category.weapons!.few_images, true); // 2 weapons images < 3
  // The whole rule recomputed by decide() flags what the overall threshold flags.
  const rule = ruleFromSet(s50, null, "t");
  const flagged = ITEMS.filter((x) => decide(x.classification, rule).flagged).map((x) => x.classification.id);
  assert.deepEqual(flagged, ["i0", "i1"]);
  assert.deepEqual([s50.rule.recall.count, s50.rule.fpr.count], [2, 0]);
  assert.deepEqual(figuresAt([0.1, 0.5], [true, false], 0.5, 1).fpr.count, 1);
  // No offensive image: nothing to choose.
  assert.equal(chooseThresholds(ITEMS.slice(4), { categories: CATS, targetRecalls: [], defaultTargetRecall: 0.9, calibration: null, minSupport: 3, split: "val", data: "" }), null);
});

test("thresholds on the calibrated score give the same decisions as the matching raw thresholds", () => {
  const calibration = { method: "platt" as const, a: 0.7, b: 0.4, ece_before: 0.2, ece_after: 0.05 };
  const raw = chooseThresholds(ITEMS, { categories: CATS, targetRecalls: [], defaultTargetRecall: 0.75, calibration: null, minSupport: 3, split: "val", data: "" })!;
  const cal = chooseThresholds(ITEMS, { categories: CATS, targetRecalls: [], defaultTargetRecall: 0.75, calibration, minSupport: 3, split: "val", data: "" })!;
  assert.equal(cal.sets[0].overall.threshold, calibrate(raw.sets[0].overall.threshold, calibration));
  const d = (rec: typeof raw) => ITEMS.map((x) => decide(x.classification, ruleFromSet(rec.sets[0], rec.calibration, "")).flagged);
  assert.deepEqual(d(cal), d(raw));
});

test("model card: thresholds round-trip; predict's options pick the rule; errors name the card", () => {
  const dir = path.join(tmp, "m");
  fs.mkdirSync(dir);
  const prompt = { systemPrompt: "", userPrompt: "Cats: {categories}", categories: CATS, allowThink: false };
  writeModelCard(dir, makeModelCard(prompt, { base_model: "/base", saved_at: "2026-01-01T00:00:00Z" }));
  const where = path.join(dir, MODEL_CARD_FILE);
  assert.deepEqual(ruleFromCard(readModelCard(dir), {}, where), { kind: "answer" });
  assert.throws(() => ruleFromCard(readModelCard(dir), { targetRecall: 0.9 }, where), /no thresholds saved; run vlm-grpo eval --model <this folder> --save-thresholds/);
  const rec = chooseThresholds(ITEMS, { categories: CATS, targetRecalls: [0.5, 1], defaultTargetRecall: 0.75, calibration: null, minSupport: 3, split: "val", data: "d.jsonl" })!;
  saveThresholds(dir, rec, prompt);
  const card = readModelCard(dir)!;
  assert.deepEqual(card.thresholds, JSON.parse(JSON.stringify(rec)));
  assert.equal(card.trained?.base_model, "/base"); // the rest of the card kept
  const def = ruleFromCard(card, {}, where);
  assert.ok(def.kind === "threshold" && def.overall === 0.6 && /saved thresholds for recall 0.75/.test(def.source));
  const r1 = ruleFromCard(card, { targetRecall: 1 }, where);
  assert.ok(r1.kind === "threshold" && r1.overall === 0.4 && r1.perCategory.weapons === 0.3);
  assert.throws(() => ruleFromCard(card, { targetRecall: 0.8 }, where), /no thresholds saved for target recall 0.8; saved: 0.5, 0.75, 1/);
  const manual = ruleFromCard(card, { threshold: 0.33 }, where);
  assert.ok(manual.kind === "threshold" && manual.overall === 0.33 && manual.perCategory.nudity !== undefined);
  assert.deepEqual(ruleFromCard(card, { useAnswer: true }, where), { kind: "answer" });
  // Thresholds chosen with another prompt are refused.
  assert.throws(() => saveThresholds(dir, rec, { ...prompt, userPrompt: "Other {categories}" }), /chosen with another user_prompt than the card's/);
  // A broken card is an error naming the file and key.
  fs.writeFileSync(where, JSON.stringify({ ...card, vlm_grpo_card: 7 }));
  assert.throws(() => readModelCard(dir), /vlm_grpo\.json: vlm_grpo_card: this vlm-grpo reads card version 1/);
  fs.writeFileSync(where, JSON.stringify({ ...card, thresholds: { ...card.thresholds, default_target_recall: 0.3 } }));
  assert.throws(() => readModelCard(dir), /thresholds\.default_target_recall: 0.3 has no set/);
  fs.writeFileSync(where, "{ not json");
  assert.throws(() => readModelCard(dir), /vlm_grpo\.json: not valid JSON/);
});
