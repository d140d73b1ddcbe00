// Classification metrics for offensive-image detection, recall first.
//
// Truth: an image is offensive when its `labels` list is non-empty (the
// categories it shows); safe when empty. The headline figure is the binary
// offensive-vs-safe recall: the share of offensive images the model flagged,
// whatever category it named.
//
// Unparseable answers (the model's text could not be read as a verdict) are
// counted according to `unparseableAs`:
//   "wrong" (default): a miss on an offensive image (FN) and a false alarm on
//            a safe one (FP): the pessimistic reading, so a model cannot gain
//            by emitting garbage. Per category: FN where the category is true,
//            FP where it is not.
//   "safe":  as if the model answered safe (FN or TN; no category flagged).
//   "offensive": as if flagged (TP or FP): what a pipeline that routes
//            unreadable answers to human review does. Per category: flagged
//            for every category.
//
// 0/0 convention: every ratio whose denominator is zero is `null` (JSON null),
// never 0 or NaN: recall with no offensive images, precision with nothing
// flagged, fpr with no safe images, accuracy of an empty set. F-scores use the
// count form F_b = (1+b^2)TP / ((1+b^2)TP + b^2 FN + FP), null only when
// TP = FN = FP = 0 (so F is 0, not null, when there were positives and none
// was found). Macro averages take the mean of the defined (non-null)
// per-category values, null when none is defined; micro averages pool the
// per-category counts and then apply the same formulas.
//
// Confusion matrix: rows are true classes, columns predicted classes. A class
// is "safe", a single category name, or several categories joined with "+"
// in the order of `categories` (e.g. "nudity+weapons"); predictions add the
// columns "offensive (no category)" and "unparseable" (raw, before the
// unparseable policy). Per-category one-vs-rest 2x2 tables are in
// `per_category[c].confusion`.

/** What the model answered for one image. */
export type PredictedLabel = { kind: "safe" } | { kind: "offensive"; categories: string[] } | { kind: "unparseable" };

/** One evaluated image. */
export interface Prediction {
  id: string;
  /** True categories; empty = safe. */
  labels: string[];
  predicted: PredictedLabel;
  /** The model's P(offensive), if it gives one (for curves). */
  score?: number;
  /** The image file, for report thumbnails. */
  imagePath?: string;
  /** The calibrated score, when a calibration was fitted. */
  calibrated_score?: number;
  /** P(category named) per category (policy/answer_probe.ts). */
  category_scores?: Record<string, number>;
  /** The model's raw answer. */
  answer?: string;
  /**
   * Per-image decisions of the threshold rules (policy/decide.ts), keyed
   * "chosen" (this evaluation's default set) and "saved" (the card's):
   * exactly what predict decides for the image with that rule.
   */
  decisions?: Record<string, { flagged: boolean | null; categories: string[]; score: number | null; threshold: number | null }>;
}

/** How unparseable answers are counted; see the file header. */
export type UnparseablePolicy = "wrong" | "safe" | "offensive";

/** A 2x2 table: positives = offensive (or, per category, showing that category). */
export interface Confusion {
  tp: number;
  fn: number;
  fp: number;
  tn: number;
}

/** Ratios from a {@link Confusion}; null = 0/0 (see the file header). */
export interface BinaryMetrics {
  /** TP / (TP + FN): the share of positives flagged. */
  recall: number | null;
  /** TP / (TP + FP). */
  precision: number | null;
  /** FP / (FP + TN): the share of negatives flagged. */
  fpr: number | null;
  /** F-beta with beta = 1. */
  f1: number | null;
  /** F-beta with beta = 2 (recall weighted 4x as much as precision). */
  f2: number | null;
  /** (TP + TN) / all. */
  accuracy: number | null;
}

/** Per-category one-vs-rest figures. */
export interface CategoryMetrics extends BinaryMetrics {
  confusion: Confusion;
  /** Images truly showing this category (TP + FN). */
  support: number;
}

/** Averages over categories. */
export interface AveragedMetrics {
  recall: number | null;
  precision: number | null;
  fpr: number | null;
  f1: number | null;
  f2: number | null;
}

/** Rows = true classes, columns = predicted classes, counts[row][col]. */
export interface ConfusionMatrix {
  rows: string[];
  cols: string[];
  counts: number[][];
}

/** The result of {@link computeMetrics}; JSON-ready (snake_case keys). */
export interface EvalMetrics extends BinaryMetrics {
  /** Number of images. */
  n: number;
  /** Offensive images (non-empty labels). */
  positives: number;
  /** Safe images. */
  negatives: number;
  /** Answers that could not be parsed. */
  unparseable: number;
  /** unparseable / n (null when n = 0). */
  unparseable_rate: number | null;
  unparseable_as: UnparseablePolicy;
  /** Binary offensive-vs-safe table, after the unparseable policy. */
  confusion: Confusion;
  categories: string[];
  per_category: Record<string, CategoryMetrics>;
  micro: AveragedMetrics;
  macro: AveragedMetrics;
  confusion_matrix: ConfusionMatrix;
}

/** Options of {@link computeMetrics}. */
export interface MetricsOptions {
  /** The configured categories, in display order. */
  categories: string[];
  /** How unparseable answers count. Default "wrong". */
  unparseableAs?: UnparseablePolicy;
}

/** The label a predicted class gets in the confusion matrix when no category was named. */
export const UNSPECIFIED_CLASS = "offensive (no category)";
/** The confusion-matrix column of unparseable answers. */
export const UNPARSEABLE_CLASS = "unparseable";

const ratio = (num: number, den: number): number | null => (den === 0 ? null : num / den);

/** F-beta from counts; null only when TP = FN = FP = 0. */
export function fBeta(c: Confusion, beta: number): number | null {
  const b2 = beta * beta;
  return ratio((1 + b2) * c.tp, (1 + b2) * c.tp + b2 * c.fn + c.fp);
}

/** Recall, precision, fpr, f1, f2 and accuracy of one 2x2 table. */
export function binaryMetrics(c: Confusion): BinaryMetrics {
  return {
    recall: ratio(c.tp, c.tp + c.fn),
    precision: ratio(c.tp, c.tp + c.fp),
    fpr: ratio(c.fp, c.fp + c.tn),
    f1: fBeta(c, 1),
    f2: fBeta(c, 2),
    accuracy: ratio(c.tp + c.tn, c.tp + c.fn + c.fp + c.tn),
  };
}

/** Which cell of the binary table a prediction falls in under `policy`. */
export function outcomeOf(p: Prediction, policy: UnparseablePolicy = "wrong"): keyof Confusion {
  const truth = p.labels.length > 0;
  let flagged: boolean;
  if (p.predicted.kind === "unparseable") {
    flagged = policy === "wrong" ? !truth : policy === "offensive";
  } else flagged = p.predicted.kind === "offensive";
  return truth ? (flagged ? "tp" : "fn") : flagged ? "fp" : "tn";
}

/** Whether prediction `p` counts as flagging category `c` under `policy` (truth is needed for "wrong"). */
function flagsCategory(p: Prediction, c: string, truth: boolean, policy: UnparseablePolicy): boolean {
  if (p.predicted.kind === "unparseable") return policy === "wrong" ? !truth : policy === "offensive";
  return p.predicted.kind === "offensive" && p.predicted.categories.includes(c);
}

/** Orders a set of categories: configured ones in config order, then others alphabetically. */
function classOf(cats: string[], order: string[]): string {
  const uniq = [...new Set(cats)];
  uniq.sort((a, b) => {
    const ia = order.indexOf(a);
    const ib = order.indexOf(b);
    if (ia >= 0 && ib >= 0) return ia - ib;
    if (ia >= 0) return -1;
    if (ib >= 0) return 1;
    return a < b ? -1 : a > b ? 1 : 0;
  });
  return uniq.join("+");
}

function predictedClass(p: PredictedLabel, order: string[]): string {
  if (p.kind === "safe") return "safe";
  if (p.kind === "unparseable") return UNPARSEABLE_CLASS;
  return p.categories.length === 0 ? UNSPECIFIED_CLASS : classOf(p.categories, order);
}

const emptyConfusion = (): Confusion => ({ tp: 0, fn: 0, fp: 0, tn: 0 });

function average(values: (number | null)[]): number | null {
  const defined = values.filter((v): v is number => v !== null);
  return defined.length === 0 ? null : defined.reduce((a, b) => a + b, 0) / defined.length;
}

/** Checks one prediction's shape; errors name the prediction's index and id. */
function checkPrediction(p: Prediction, i: number, categories: string[]): void {
  const where = `prediction ${i}${p && typeof p.id === "string" ? ` (id "${p.id}")` : ""}`;
  if (!p || typeof p !== "object") throw new Error(`${where}: expected an object`);
  if (!Array.isArray(p.labels)) throw new Error(`${where}: labels must be an array of category names (empty = safe)`);
  for (const l of p.labels) {
    if (!categories.includes(l)) throw new Error(`${where}: true label "${l}" is not one of the categories [${categories.join(", ")}]`);
  }
  const k = p.predicted?.kind;
  if (k !== "safe" && k !== "offensive" && k !== "unparseable") {
    throw new Error(`${where}: predicted.kind must be "safe", "offensive" or "unparseable", got ${JSON.stringify(k)}`);
  }
  if (k === "offensive" && !Array.isArray((p.predicted as { categories?: unknown }).categories)) {
    throw new Error(`${where}: predicted.categories must be an array for an offensive prediction`);
  }
  if (p.score !== undefined && !(typeof p.score === "number" && p.score >= 0 && p.score <= 1)) {
    throw new Error(`${where}: score must be a number in [0, 1], got ${p.score}`);
  }
}

/** Computes every metric of the file header over `predictions`. */
export function computeMetrics(predictions: Prediction[], opts: MetricsOptions): EvalMetrics {
  const categories = opts.categories;
  const policy = opts.unparseableAs ?? "wrong";
  if (!["wrong", "safe", "offensive"].includes(policy)) throw new Error(`unparseableAs must be "wrong", "safe" or "offensive", got ${JSON.stringify(policy)}`);
  if (new Set(categories).size !== categories.length) throw new Error(`categories contain duplicates: [${categories.join(", ")}]`);

  const confusion = emptyConfusion();
  const perCat: Record<string, Confusion> = Object.fromEntries(categories.map((c) => [c, emptyConfusion()]));
  const matrix = new Map<string, Map<string, number>>();
  let unparseable = 0;

  predictions.forEach((p, i) => {
    checkPrediction(p, i, categories);
    confusion[outcomeOf(p, policy)]++;
    if (p.predicted.kind === "unparseable") unparseable++;
    for (const c of categories) {
      const truth = p.labels.includes(c);
      const flagged = flagsCategory(p, c, truth, policy);
      perCat[c][truth ? (flagged ? "tp" : "fn") : flagged ? "fp" : "tn"]++;
    }
    const row = p.labels.length === 0 ? "safe" : classOf(p.labels, categories);
    const col = predictedClass(p.predicted, categories);
    const r = matrix.get(row) ?? new Map<string, number>();
    r.set(col, (r.get(col) ?? 0) + 1);
    matrix.set(row, r);
  });

  const per_category: Record<string, CategoryMetrics> = {};
  for (const c of categories) per_category[c] = { ...binaryMetrics(perCat[c]), confusion: perCat[c], support: perCat[c].tp + perCat[c].fn };

  const pooled = emptyConfusion();
  for (const c of categories) for (const k of ["tp", "fn", "fp", "tn"] as const) pooled[k] += perCat[c][k];
  const microAll = binaryMetrics(pooled);
  const micro: AveragedMetrics = { recall: microAll.recall, precision: microAll.precision, fpr: microAll.fpr, f1: microAll.f1, f2: microAll.f2 };
  const macro: AveragedMetrics = {
    recall: average(categories.map((c) => per_category[c].recall)),
    precision: average(categories.map((c) => per_category[c].precision)),
    fpr: average(categories.map((c) => per_category[c].fpr)),
    f1: average(categories.map((c) => per_category[c].f1)),
    f2: average(categories.map((c) => per_category[c].f2)),
  };

  const n = predictions.length;
  return {
    ...binaryMetrics(confusion),
    n,
    positives: confusion.tp + confusion.fn,
    negatives: confusion.fp + confusion.tn,
    unparseable,
    unparseable_rate: ratio(unparseable, n),
    unparseable_as: policy,
    confusion,
    categories: [...categories],
    per_category,
    micro,
    macro,
    confusion_matrix: buildMatrix(matrix, categories),
  };
}

/** Lays out the class matrix: safe, single categories (config order), combinations, then other columns. */
function buildMatrix(m: Map<string, Map<string, number>>, categories: string[]): ConfusionMatrix {
  const base = ["safe", ...categories];
  const seenRows = [...m.keys()];
  const seenCols = [...new Set([...m.values()].flatMap((r) => [...r.keys()]))];
  const extra = (seen: string[]) => seen.filter((k) => !base.includes(k) && k !== UNSPECIFIED_CLASS && k !== UNPARSEABLE_CLASS).sort();
  const rows = [...base, ...extra(seenRows)];
  const cols = [...base, ...extra(seenCols), UNSPECIFIED_CLASS, UNPARSEABLE_CLASS];
  const counts = rows.map((r) => cols.map((c) => m.get(r)?.get(c) ?? 0));
  return { rows, cols, counts };
}
