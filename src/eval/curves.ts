// Threshold analysis from scores: ROC and precision-recall curves, ROC AUC,
// average precision, recall at a bounded false-positive rate, and the
// threshold that reaches a target recall.
//
// A score is the model's P(offensive); an image is flagged when
// score >= threshold. Operating points are taken at every distinct score
// (descending), so tied scores move together: one point per tie group. The
// first point has threshold null and flags nothing (recall 0, fpr 0).
//
// ROC AUC is the trapezoid area under (fpr, recall) over those points, which
// equals the Mann-Whitney statistic P(score_pos > score_neg) + 0.5 P(tie).
// Average precision is the step sum  sum_k (R_k - R_{k-1}) P_k  over the
// points (no interpolation; scikit-learn's definition).
// 0/0 follows metrics.ts: a ratio with a zero denominator is null. With no
// positive images recall, AUC and AP are null; with no negatives fpr and AUC
// are null.
import type { Prediction } from "./metrics.js";

/** One threshold and what flagging at it gives. */
export interface OperatingPoint {
  /** Flag when score >= threshold; null = flag nothing. */
  threshold: number | null;
  tp: number;
  fp: number;
  /** tp / positives. */
  recall: number | null;
  /** fp / negatives. */
  fpr: number | null;
  /** tp / (tp + fp); null at the flag-nothing point. */
  precision: number | null;
}

/** The best recall reachable while keeping fpr <= max_fpr. */
export interface RecallAtFpr {
  max_fpr: number;
  recall: number | null;
  /** The highest threshold giving that recall (null = flag nothing, or undefined). */
  threshold: number | null;
  /** The fpr at that threshold. */
  fpr: number | null;
}

/** Everything {@link computeCurves} derives; JSON-ready. */
export interface Curves {
  /** Scored images used. */
  n: number;
  positives: number;
  negatives: number;
  /** Predictions left out for lack of a score (curvesFromPredictions only). */
  skipped: number;
  /** Operating points by decreasing threshold, starting with the flag-nothing point. */
  points: OperatingPoint[];
  roc_auc: number | null;
  average_precision: number | null;
  recall_at_fpr: RecallAtFpr[];
}

/** Options of {@link computeCurves}. */
export interface CurveOptions {
  /** FPR bounds for `recall_at_fpr`. Default [0.01, 0.05, 0.1]. */
  fprTargets?: number[];
}

/** A chosen threshold and its figures. */
export interface ThresholdChoice {
  threshold: number;
  recall: number;
  fpr: number | null;
  precision: number | null;
  tp: number;
  fp: number;
}

const ratio = (num: number, den: number): number | null => (den === 0 ? null : num / den);

/** Computes operating points, AUC, AP and recall at each FPR target. */
export function computeCurves(scores: number[], truth: boolean[], opts: CurveOptions = {}): Curves {
  if (scores.length !== truth.length) throw new Error(`computeCurves: ${scores.length} scores but ${truth.length} truth values`);
  scores.forEach((s, i) => {
    if (typeof s !== "number" || !Number.isFinite(s)) throw new Error(`computeCurves: score ${i} is not a finite number (${s})`);
  });
  const P = truth.filter(Boolean).length;
  const N = truth.length - P;
  const order = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a]);

  const point = (threshold: number | null, tp: number, fp: number): OperatingPoint => ({
    threshold,
    tp,
    fp,
    recall: ratio(tp, P),
    fpr: ratio(fp, N),
    precision: ratio(tp, tp + fp),
  });
  const points: OperatingPoint[] = [point(null, 0, 0)];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < order.length; ) {
    const t = scores[order[k]];
    while (k < order.length && scores[order[k]] === t) truth[order[k++]] ? tp++ : fp++;
    points.push(point(t, tp, fp));
  }

  let auc: number | null = null;
  if (P > 0 && N > 0) {
    auc = 0;
    for (let k = 1; k < points.length; k++) {
      const a = points[k - 1];
      const b = points[k];
      auc += ((b.fp - a.fp) / N) * ((a.tp + b.tp) / (2 * P));
    }
  }
  let ap: number | null = null;
  if (P > 0) {
    ap = 0;
    for (let k = 1; k < points.length; k++) ap += ((points[k].tp - points[k - 1].tp) / P) * (points[k].precision ?? 0);
  }
  const curves: Curves = { n: scores.length, positives: P, negatives: N, skipped: 0, points, roc_auc: auc, average_precision: ap, recall_at_fpr: [] };
  curves.recall_at_fpr = (opts.fprTargets ?? [0.01, 0.05, 0.1]).map((f) => recallAtFpr(curves, f));
  return curves;
}

/**
 * Curves from predictions: truth = non-empty labels, score = `score`.
 * Predictions without a score are left out and counted in `skipped`.
 */
export function curvesFromPredictions(predictions: Prediction[], opts: CurveOptions = {}): Curves {
  const scored = predictions.filter((p) => typeof p.score === "number");
  const c = computeCurves(
    scored.map((p) => p.score as number),
    scored.map((p) => p.labels.length > 0),
    opts,
  );
  c.skipped = predictions.length - scored.length;
  return c;
}

/** Max recall among operating points with fpr <= maxFpr (the highest such threshold on ties). */
export function recallAtFpr(curves: Curves, maxFpr: number): RecallAtFpr {
  let best: OperatingPoint | null = null;
  if (curves.positives > 0 && curves.negatives > 0) {
    for (const p of curves.points) {
      if ((p.fpr as number) <= maxFpr + 1e-12 && (best === null || (p.recall as number) > (best.recall as number))) best = p;
    }
  }
  return { max_fpr: maxFpr, recall: best?.recall ?? null, threshold: best?.threshold ?? null, fpr: best?.fpr ?? null };
}

/**
 * The highest threshold whose recall is >= target (0 < target <= 1), with its
 * fpr and precision; null when there are no positives.
 */
export function thresholdForRecall(curves: Curves, target: number): ThresholdChoice | null {
  if (!(target > 0 && target <= 1)) throw new Error(`thresholdForRecall: target must be in (0, 1], got ${target}`);
  if (curves.positives === 0) return null;
  for (const p of curves.points) {
    if (p.threshold !== null && (p.recall as number) >= target - 1e-12) {
      return { threshold: p.threshold, recall: p.recall as number, fpr: p.fpr, precision: p.precision, tp: p.tp, fp: p.fp };
    }
  }
  return null; // unreachable: the last point has recall 1
}

/**
 * The threshold sweep: recall and fpr at every distinct score used as the
 * threshold, by decreasing threshold (the flag-nothing point left out);
 * empty when recall or fpr is undefined (no positives or no negatives).
 */
export function sweepPoints(curves: Curves): { threshold: number; recall: number; fpr: number }[] {
  if (curves.positives === 0 || curves.negatives === 0) return [];
  return curves.points.filter((p) => p.threshold !== null).map((p) => ({ threshold: p.threshold as number, recall: p.recall as number, fpr: p.fpr as number }));
}

/** ROC polyline (fpr, recall), ending at (1, 1); empty when undefined. */
export function rocPoints(curves: Curves): [number, number][] {
  if (curves.positives === 0 || curves.negatives === 0) return [];
  return curves.points.map((p) => [p.fpr as number, p.recall as number]);
}

/** PR polyline (recall, precision) over points where both are defined. */
export function prPoints(curves: Curves): [number, number][] {
  return curves.points.filter((p) => p.recall !== null && p.precision !== null).map((p) => [p.recall as number, p.precision as number]);
}
