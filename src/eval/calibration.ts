// Calibration of the offensive score, and how well calibrated a score is.
//
// Method: Platt scaling on the score's logit, p' = sigmoid(a * logit(p) + b)
// (temperature scaling, temperature 1/a, plus a bias b), fitted by maximum
// likelihood on the validation split. Why this and not isotonic regression:
//   - it is strictly increasing (a > 0), so it never changes which image
//     ranks above which: ROC AUC, the threshold curves and every decision at
//     a matching threshold stay the same; isotonic regression is a step
//     function that ties scores together and changes the ranking;
//   - two parameters fit well on the few hundred validation images a
//     moderation fine-tune has (and on few dozen offensive ones), where
//     isotonic regression overfits its steps;
//   - the bias matters here: the score 1 - P("safe") is read from one
//     next-token distribution and is often shifted as a whole (a model that
//     rarely says "safe" scores everything high), which temperature alone
//     cannot move.
// The targets are Platt's smoothed labels, (N+ + 1)/(N+ + 2) for positives
// and 1/(N- + 2) for negatives (Platt 1999), which keep the fit finite when
// the validation scores separate the classes perfectly. The fit is Newton's
// method on the convex negative log-likelihood, with step halving.
//
// Expected calibration error (ECE): scores are put in `bins` equal-width bins
// over [0, 1] (the last bin includes 1); ECE = sum_b (n_b / N) |frac_pos_b -
// mean_score_b|. The reliability diagram plots frac_pos_b against
// mean_score_b per non-empty bin; a calibrated score lies on the diagonal.
import { type Calibration, calibrate } from "../policy/thresholds.js";

const EPS = 1e-7;
const logit = (p: number) => {
  const q = Math.min(1 - EPS, Math.max(EPS, p));
  return Math.log(q / (1 - q));
};
const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));
/** log(1 + e^z), without overflow. */
const softplus = (z: number) => (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z)));

function checkInputs(scores: readonly number[], truth: readonly boolean[], who: string): void {
  if (scores.length !== truth.length) throw new Error(`${who}: ${scores.length} scores but ${truth.length} labels`);
  scores.forEach((s, i) => {
    if (!(typeof s === "number" && s >= 0 && s <= 1)) throw new Error(`${who}: score ${i} must be a number in [0, 1], got ${s}`);
  });
}

/** Why a calibration could not be fitted (too little data, or scores that do not rank positives higher). */
export type CalibrationFit = { ok: true; calibration: Calibration; iterations: number } | { ok: false; reason: string };

/** Fits p' = sigmoid(a logit(p) + b) by maximum likelihood with Platt's smoothed targets. */
export function fitPlatt(scores: readonly number[], truth: readonly boolean[]): CalibrationFit {
  checkInputs(scores, truth, "fitPlatt");
  const pos = truth.filter(Boolean).length;
  const neg = truth.length - pos;
  if (pos === 0 || neg === 0) return { ok: false, reason: `needs offensive and safe images, got ${pos} offensive and ${neg} safe` };
  const hiT = (pos + 1) / (pos + 2);
  const loT = 1 / (neg + 2);
  const x = scores.map(logit);
  const t = truth.map((y) => (y ? hiT : loT));
  const nll = (a: number, b: number) => {
    let s = 0;
    for (let i = 0; i < x.length; i++) {
      const f = a * x[i] + b;
      s += t[i] * softplus(-f) + (1 - t[i]) * softplus(f);
    }
    return s;
  };
  let a = 1;
  let b = 0;
  let cur = nll(a, b);
  let it = 0;
  for (; it < 200; it++) {
    let ga = 0;
    let gb = 0;
    let haa = 1e-12;
    let hab = 0;
    let hbb = 1e-12;
    for (let i = 0; i < x.length; i++) {
      const q = sigmoid(a * x[i] + b);
      const r = q - t[i];
      const w = q * (1 - q);
      ga += r * x[i];
      gb += r;
      haa += w * x[i] * x[i];
      hab += w * x[i];
      hbb += w;
    }
    const det = haa * hbb - hab * hab;
    let da: number;
    let db: number;
    if (det > 1e-300) {
      da = -(hbb * ga - hab * gb) / det;
      db = -(-hab * ga + haa * gb) / det;
    } else {
      da = -ga / haa; // degenerate (all scores equal): only the bias is identifiable
      db = -gb / hbb;
    }
    let step = 1;
    let next = nll(a + da, b + db);
    while (next > cur && step > 1e-10) {
      step /= 2;
      next = nll(a + step * da, b + step * db);
    }
    if (next > cur) break;
    a += step * da;
    b += step * db;
    const moved = Math.abs(step * da) + Math.abs(step * db);
    cur = next;
    if (moved < 1e-10) break;
  }
  if (!(a > 0) || !Number.isFinite(b)) return { ok: false, reason: `the scores do not rank offensive images above safe ones (fitted slope ${a.toPrecision(3)} <= 0)` };
  return { ok: true, calibration: { method: "platt", a, b }, iterations: it };
}

/** One bin of a reliability diagram. */
export interface ReliabilityBin {
  lo: number;
  hi: number;
  n: number;
  /** Mean score in the bin (null when empty). */
  mean_score: number | null;
  /** Share of offensive images in the bin (null when empty). */
  frac_positive: number | null;
}

/** Equal-width reliability bins over [0, 1]. */
export function reliabilityBins(scores: readonly number[], truth: readonly boolean[], bins = 10): ReliabilityBin[] {
  checkInputs(scores, truth, "reliabilityBins");
  if (!(Number.isInteger(bins) && bins >= 1)) throw new Error(`reliabilityBins: bins must be a positive integer, got ${bins}`);
  const sum = new Array<number>(bins).fill(0);
  const posCount = new Array<number>(bins).fill(0);
  const n = new Array<number>(bins).fill(0);
  scores.forEach((s, i) => {
    const k = Math.min(bins - 1, Math.floor(s * bins));
    n[k]++;
    sum[k] += s;
    if (truth[i]) posCount[k]++;
  });
  return n.map((c, k) => ({ lo: k / bins, hi: (k + 1) / bins, n: c, mean_score: c ? sum[k] / c : null, frac_positive: c ? posCount[k] / c : null }));
}

/** Expected calibration error over equal-width bins; null with no scores. */
export function expectedCalibrationError(scores: readonly number[], truth: readonly boolean[], bins = 10): number | null {
  if (scores.length === 0) return null;
  const r = reliabilityBins(scores, truth, bins);
  return r.reduce((acc, b) => acc + (b.n === 0 ? 0 : (b.n / scores.length) * Math.abs(b.frac_positive! - b.mean_score!)), 0);
}

/** What calibration did on one set of images. */
export interface CalibrationCheck {
  images: number;
  ece_before: number | null;
  ece_after: number | null;
  reliability_before: ReliabilityBin[];
  reliability_after: ReliabilityBin[];
}

/** ECE and reliability bins of the raw and the calibrated scores. */
export function checkCalibration(scores: readonly number[], truth: readonly boolean[], c: Calibration, bins = 10): CalibrationCheck {
  const after = scores.map((s) => calibrate(s, c));
  return {
    images: scores.length,
    ece_before: expectedCalibrationError(scores, truth, bins),
    ece_after: expectedCalibrationError(after, truth, bins),
    reliability_before: reliabilityBins(scores, truth, bins),
    reliability_after: reliabilityBins(after, truth, bins),
  };
}
