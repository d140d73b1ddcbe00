// Saved thresholds (the `thresholds` block of a model card) and the score
// calibration they are expressed in.
//
// Calibration maps the raw score p = P(offensive) to
//   p' = sigmoid(a * logit(p) + b),  a > 0,
// i.e. temperature scaling of the score's logit (temperature 1/a) with a
// bias b (Platt scaling on the logit). Fitting lives in
// src/eval/calibration.ts; applying it lives here because every decision
// (predict, eval, the server) applies it the same way. With a > 0 the map is
// strictly increasing, so thresholding p' is thresholding p: calibration
// changes what a score means, never which images rank above which.
//
// A record holds one threshold set per target recall, each with an overall
// threshold (on the calibrated score: it flags) and one per category (on that
// category's score, see answer_probe.ts: it names a flagged image's
// categories), with the figures they were chosen
// on: recall and false-positive rate at the threshold with Wilson 95%
// intervals, the counts behind them, and `few_images` when a figure rests on
// fewer positives or negatives than the record's `min_support`.

/** p' = sigmoid(a * logit(p) + b). */
export interface Calibration {
  method: "platt";
  a: number;
  b: number;
}

/** A rate with its Wilson interval (null when its denominator is 0). */
export interface FigureWithInterval {
  value: number | null;
  lo: number | null;
  hi: number | null;
  /** Numerator and denominator. */
  count: number;
  of: number;
}

/** What a threshold gave on the images it was chosen on. */
export interface ThresholdFigures {
  /** Flag when score >= threshold. */
  threshold: number;
  recall: FigureWithInterval;
  fpr: FigureWithInterval;
  precision: number | null;
  /** recall.of or fpr.of below the record's min_support. */
  few_images: boolean;
}

/** What a whole decision rule gave (no single threshold). */
export interface RuleFigures {
  recall: FigureWithInterval;
  fpr: FigureWithInterval;
  precision: number | null;
  few_images: boolean;
}

export interface ThresholdSet {
  target_recall: number;
  overall: ThresholdFigures;
  /** Per category; null when the split had no image of that category. */
  per_category: Record<string, ThresholdFigures | null>;
  /** The whole rule (policy/decide.ts: flag at the overall threshold) on the same images, through decide(). */
  rule: RuleFigures;
}

export interface ThresholdRecord {
  /** ISO 8601 time of the evaluation. */
  chosen_at: string;
  /** The split the thresholds (and the calibration) were chosen on. */
  split: string;
  /** The dataset path, as given to eval. */
  data: string;
  /** Images of that split used, with how many were offensive. */
  images: number;
  positives: number;
  /** Figures resting on fewer positives (or negatives) than this are marked few_images. */
  min_support: number;
  /** The overall threshold applies to the calibrated score when calibration is set, else to the raw score. */
  calibration: (Calibration & { ece_before: number; ece_after: number }) | null;
  /** The set predict uses when no --target-recall is given. */
  default_target_recall: number;
  sets: ThresholdSet[];
}

const EPS = 1e-7;
const logit = (p: number) => {
  const q = Math.min(1 - EPS, Math.max(EPS, p));
  return Math.log(q / (1 - q));
};
const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/** The calibrated score; the raw score itself when `c` is null. */
export function calibrate(p: number, c: Calibration | null): number {
  if (c === null) return p;
  return sigmoid(c.a * logit(p) + c.b);
}

/** The set for a target recall (exact match), or an error listing the saved ones. */
export function thresholdSetFor(record: ThresholdRecord, targetRecall: number | undefined, where: string): ThresholdSet {
  const want = targetRecall ?? record.default_target_recall;
  const set = record.sets.find((s) => Math.abs(s.target_recall - want) < 1e-9);
  if (!set) {
    throw new Error(`${where}: no thresholds saved for target recall ${want}; saved: ${record.sets.map((s) => s.target_recall).join(", ")} (vlm-grpo eval --save-thresholds --eval.target_recall ${want} chooses it; that replaces the saved sets)`);
  }
  return set;
}

// ---- checking a record read from a file ------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isNumOrNull = (v: unknown) => v === null || isNum(v);

function checkFigure(v: unknown, where: string): void {
  if (!isObject(v) || !isNumOrNull(v.value) || !isNumOrNull(v.lo) || !isNumOrNull(v.hi) || !Number.isInteger(v.count) || !Number.isInteger(v.of)) {
    throw new Error(`${where}: expected {value, lo, hi, count, of}, got ${JSON.stringify(v)}`);
  }
}

function checkFigures(v: unknown, where: string): void {
  if (!isObject(v)) throw new Error(`${where}: expected an object, got ${JSON.stringify(v)}`);
  if (!isNum(v.threshold) || v.threshold < 0 || v.threshold > 1) throw new Error(`${where}.threshold: expected a number in [0, 1], got ${JSON.stringify(v.threshold)}`);
  checkFigure(v.recall, `${where}.recall`);
  checkFigure(v.fpr, `${where}.fpr`);
  if (!isNumOrNull(v.precision)) throw new Error(`${where}.precision: expected a number or null`);
  if (typeof v.few_images !== "boolean") throw new Error(`${where}.few_images: expected true or false`);
}

/** Checks a thresholds block against the card's categories; errors name the key. */
export function checkThresholdRecord(raw: unknown, categories: readonly string[], where: string): ThresholdRecord {
  if (!isObject(raw)) throw new Error(`${where}: expected an object or null`);
  for (const k of ["chosen_at", "split", "data"] as const) if (typeof raw[k] !== "string") throw new Error(`${where}.${k}: expected a string, got ${JSON.stringify(raw[k])}`);
  for (const k of ["images", "positives", "min_support"] as const) if (!Number.isInteger(raw[k])) throw new Error(`${where}.${k}: expected an integer, got ${JSON.stringify(raw[k])}`);
  const c = raw.calibration;
  if (c !== null && !(isObject(c) && c.method === "platt" && isNum(c.a) && c.a > 0 && isNum(c.b) && isNum(c.ece_before) && isNum(c.ece_after))) {
    throw new Error(`${where}.calibration: expected null or {method: "platt", a > 0, b, ece_before, ece_after}, got ${JSON.stringify(c)}`);
  }
  if (!isNum(raw.default_target_recall)) throw new Error(`${where}.default_target_recall: expected a number`);
  if (!Array.isArray(raw.sets) || raw.sets.length === 0) throw new Error(`${where}.sets: expected a non-empty list of threshold sets`);
  raw.sets.forEach((s, i) => {
    const w = `${where}.sets[${i}]`;
    if (!isObject(s) || !isNum(s.target_recall)) throw new Error(`${w}.target_recall: expected a number`);
    checkFigures(s.overall, `${w}.overall`);
    if (!isObject(s.rule)) throw new Error(`${w}.rule: expected {recall, fpr, precision, few_images}`);
    checkFigure(s.rule.recall, `${w}.rule.recall`);
    checkFigure(s.rule.fpr, `${w}.rule.fpr`);
    if (!isObject(s.per_category)) throw new Error(`${w}.per_category: expected an object keyed by category`);
    for (const [cat, f] of Object.entries(s.per_category)) {
      if (!categories.includes(cat)) throw new Error(`${w}.per_category: '${cat}' is not one of the card's categories (${categories.join(", ")})`);
      if (f !== null) checkFigures(f, `${w}.per_category.${cat}`);
    }
  });
  if (!raw.sets.some((s) => Math.abs((s as ThresholdSet).target_recall - (raw.default_target_recall as number)) < 1e-9)) {
    throw new Error(`${where}.default_target_recall: ${raw.default_target_recall} has no set in sets`);
  }
  return raw as unknown as ThresholdRecord;
}
