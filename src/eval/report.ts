// The evaluation report: one self-contained HTML file (inline CSS, inline SVG
// charts, base64 JPEG thumbnails; nothing fetched when opened) that puts
// what a moderation team needs first:
//   1. the run comparison table (recall first), and optionally what the recall
//      costs against a baseline run (false alarms per 1,000 safe images),
//   2. thresholds: recall at FPR <= 1/5/10%, and the threshold reaching a target recall,
//      then the decisions at the thresholds chosen on the threshold split and the
//      calibration of the score (report_decisions.ts),
//   3. per-category one-vs-rest figures with micro/macro averages,
//   4. confusion tables (binary 2x2 and the class matrix),
//   5. PR and ROC curves (one line per run), the threshold sweep (recall and
//      FPR against the score threshold, per run), optional training curves,
//   6. the errors: misses (false negatives) first, then false alarms, as
//      thumbnails with id, true labels, prediction and score. Thumbnails of
//      images labelled offensive are blurred unless `unblur`.
// Every piece of text from data (run names, ids, labels) is HTML-escaped.
import fs from "node:fs";
import path from "node:path";
import { columnsFor, type CompareRun, formatMetric } from "./compare_table.js";
import { type Curves, prPoints, rocPoints, sweepPoints, thresholdForRecall } from "./curves.js";
import { type EvalMetrics, outcomeOf, type Prediction, type PredictedLabel } from "./metrics.js";
import { calibrationSection, decisionsSection, type DecisionParts, intervalCells, warningsBlock } from "./report_decisions.js";
import type { SubsetRow } from "./subset_table.js";
import { falseAlarmsPer1000, priceSentence } from "./price_table.js";
import { escapeHtml, lineChartSvg, PALETTE, type Series } from "./svg_plot.js";
import { thumbnailDataUri } from "./thumbnails.js";

/** One evaluated model/checkpoint (with, optionally, its intervals, calibration and thresholds: report_decisions.ts). */
export interface ReportRun extends DecisionParts {
  name: string;
  metrics: EvalMetrics;
  /** Null/absent when the run has no scores. */
  curves?: Curves | null;
  predictions: Prediction[];
}

/** A chart of training curves (e.g. loss and reward against step). */
export interface TrainingChart {
  title: string;
  series: Series[];
  xLabel?: string;
  yLabel?: string;
}

/** Options of {@link writeReport}. */
export interface ReportOptions {
  runs: ReportRun[];
  categories: string[];
  /** Show thumbnails of offensive-labelled images unblurred. Default false. */
  unblur?: boolean;
  /** Page title. Default "Evaluation report". */
  title?: string;
  /** At most this many thumbnails per run of each kind (misses, false alarms). Default 48. */
  maxThumbnails?: number;
  /** Thumbnail size in px. Default 128. */
  thumbSize?: number;
  /** Blur sigma for offensive-labelled thumbnails. Default 10. */
  blurSigma?: number;
  /** Target recalls for the threshold table. Default [0.9, 0.95, 0.99]. */
  recallTargets?: number[];
  /** Training-curve charts to include. Default none. */
  trainingCharts?: TrainingChart[];
  /** Name of the run the price of recall of the runs listed after it is measured against (e.g. "sft"). Default none (no price section). */
  priceBaseline?: string;
  /** Recall and FPR on the normal and the hard images (the manifest's hard flag). Default none (no section). */
  subsets?: SubsetRow[] | null;
  /** Output file name inside outDir. Default "report.html". */
  fileName?: string;
  /** Clock for the "generated" line. Default new Date(). */
  now?: Date;
  /** The image of a prediction for its thumbnail: a path or encoded bytes (Parquet). Default: its imagePath. */
  imageOf?: (p: Prediction) => string | Uint8Array | undefined;
  /** The evaluated split's name, for headings. Default "test". */
  split?: string;
}

const e = escapeHtml;
const pct = (v: number | null | undefined) => formatMetric(v, 3);

/** How a prediction reads in the report: "safe", "offensive: nudity, weapons", "unparseable". */
export function describePrediction(p: PredictedLabel): string {
  if (p.kind === "offensive") return p.categories.length ? `offensive: ${p.categories.join(", ")}` : "offensive";
  return p.kind;
}

const CSS = `
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
td.best{font-weight:bold;background:#e8f4ea}.meta{color:#666;font-size:13px}
.charts{display:flex;flex-wrap:wrap;gap:16px}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}
figure.thumb{margin:0;width:150px;font-size:11px;border:1px solid #ddd;padding:4px;background:#fafafa}
figure.thumb img{display:block;margin:auto;max-width:128px;max-height:128px}
figure.fn{border-color:#d55e00}figure.fp{border-color:#0072b2}
.badge{display:inline-block;background:#444;color:#fff;border-radius:3px;padding:0 4px;font-size:10px}
.noimg{height:64px;display:flex;align-items:center;justify-content:center;color:#999;text-align:center}
ul.warn{color:#a04000;font-size:13px}tr.few td,span.few{background:#fff3e0}
`;

function table(header: string[], rows: string[][], classes?: string[][]): string {
  const th = header.map((h) => `<th>${e(h)}</th>`).join("");
  const body = rows
    .map((r, i) => `<tr>${r.map((c, j) => `<td${classes?.[i]?.[j] ? ` class="${classes[i][j]}"` : ""}>${e(c)}</td>`).join("")}</tr>`)
    .join("\n");
  return `<table>\n<tr>${th}</tr>\n${body}\n</table>`;
}

function comparisonSection(runs: ReportRun[]): string {
  const cols = columnsFor(runs as CompareRun[]);
  const withCi = runs.some((r) => r.intervals);
  const header = ["run", ...cols.map((c) => c.header), ...(withCi ? ["recall 95% CI", "fpr 95% CI"] : []), "n", "unparseable as"];
  const rows = runs.map((r) => [r.name, ...cols.map((c) => pct(c.value(r))), ...(withCi ? intervalCells(r) : []), String(r.metrics.n), r.metrics.unparseable_as]);
  // Highlight the best recall (the headline) across runs.
  const recalls = runs.map((r) => r.metrics.recall ?? -1);
  const best = Math.max(...recalls);
  const classes = runs.map((r, i) => (runs.length > 1 && recalls[i] === best && best >= 0 ? ["", "best"] : []));
  return `<h2>Runs</h2>\n${table(header, rows, classes)}${withCi ? `\n<p class="meta">95% CI: Wilson score intervals.</p>` : ""}\n${warningsBlock(runs)}`;
}

/** The baseline run and the runs listed after it (e.g. sft, then the GRPO runs; a random base model before it is left out). */
function priceSection(allRuns: ReportRun[], baseline: string | undefined): string {
  const at = allRuns.findIndex((r) => r.name === baseline);
  if (at < 0) return "";
  const runs = allRuns.slice(at);
  const base = runs[0];
  const header = ["run", "caught", "missed", "recall", "false alarms per 1,000 safe images", "ROC AUC"];
  const rows = runs.map((r) => {
    const c = r.metrics.confusion;
    const fa = falseAlarmsPer1000(r.metrics);
    return [r.name, `${c.tp} of ${c.tp + c.fn}`, String(c.fn), pct(r.metrics.recall), fa === null ? "n/a" : fa.toFixed(0), pct(r.curves?.roc_auc)];
  });
  const lines = runs
    .filter((r) => r !== base)
    .map((r) => priceSentence({ name: r.name, metrics: r.metrics }, { name: base.name, metrics: base.metrics }))
    .filter((x): x is string => x !== null);
  return `<h2>What the recall costs</h2>\n${table(header, rows)}\n${lines.map((l) => `<p>${e(l)}.</p>`).join("\n")}`;
}

/** The price of recall on the normal and the hard images, each run in the order of the runs table. */
function subsetSection(rows: SubsetRow[] | null | undefined): string {
  if (!rows || rows.length === 0) return "";
  const header = ["run", "subset", "caught", "recall", "safe images", "FPR", "false alarms per 1,000 safe images"];
  const cells = rows.map((r) => [r.run, r.subset, `${r.caught} of ${r.offensive}`, pct(r.recall), String(r.safe), pct(r.fpr), r.fpr === null ? "n/a" : (r.fpr * 1000).toFixed(0)]);
  return `<h2>By subset</h2>\n<p class="meta">The manifest's <code>hard</code> flag: in the synthetic set, look-alikes and small, partly hidden objects.</p>\n${table(header, cells)}`;
}

function sweepSection(runs: ReportRun[]): string {
  const withCurves = runs.map((r, i) => ({ r, color: PALETTE[i % PALETTE.length] })).filter((x) => x.r.curves && x.r.curves.positives > 0 && x.r.curves.negatives > 0);
  if (withCurves.length === 0) return "";
  const series: Series[] = withCurves.flatMap(({ r, color }) => {
    const s = sweepPoints(r.curves!);
    return [
      { name: `${r.name} recall`, points: s.map((p) => [p.threshold, p.recall] as [number, number]), color },
      { name: `${r.name} FPR`, points: s.map((p) => [p.threshold, p.fpr] as [number, number]), color, dashed: true },
    ];
  });
  return [
    "<h2>Threshold sweep</h2>",
    `<p class="meta">Flag an image when its score P(offensive) is at least the threshold: recall (solid) and false-positive rate (dashed) of each model as the threshold moves. The models' own answers (greedy decoding) are one point on these curves; the tables above give it.</p>`,
    lineChartSvg(series, { title: "Recall and FPR against the score threshold", xLabel: "threshold on P(offensive)", yLabel: "share", xDomain: [0, 1], yDomain: [0, 1], width: 560 }),
  ].join("\n");
}

function thresholdSection(runs: ReportRun[], targets: number[]): string {
  const withCurves = runs.filter((r) => r.curves);
  if (withCurves.length === 0) return "";
  const fprTargets = withCurves[0].curves!.recall_at_fpr.map((x) => x.max_fpr);
  const h1 = ["run", ...fprTargets.map((f) => `recall @ fpr<=${f}`)];
  const rows1 = withCurves.map((r) => [r.name, ...fprTargets.map((f) => pct(r.curves!.recall_at_fpr.find((x) => x.max_fpr === f)?.recall))]);
  const h2 = ["run", ...targets.flatMap((t) => [`threshold for recall>=${t}`, "fpr", "precision"])];
  const rows2 = withCurves.map((r) => [
    r.name,
    ...targets.flatMap((t) => {
      const c = thresholdForRecall(r.curves!, t);
      return c ? [c.threshold.toPrecision(4), pct(c.fpr), pct(c.precision)] : ["n/a", "n/a", "n/a"];
    }),
  ]);
  return `<h2>Thresholds</h2>\n<p class="meta">From scores (P(offensive)); an image is flagged when score &gt;= threshold.</p>\n${table(h1, rows1)}\n${table(h2, rows2)}`;
}

function perCategorySection(runs: ReportRun[], categories: string[]): string {
  const header = ["run", "category", "support", "recall", "precision", "fpr", "f1", "f2", "tp", "fn", "fp", "tn"];
  const rows: string[][] = [];
  for (const r of runs) {
    for (const c of categories) {
      const m = r.metrics.per_category[c];
      if (!m) continue;
      const k = m.confusion;
      rows.push([r.name, c, String(m.support), pct(m.recall), pct(m.precision), pct(m.fpr), pct(m.f1), pct(m.f2), String(k.tp), String(k.fn), String(k.fp), String(k.tn)]);
    }
    for (const [label, a] of [["micro avg", r.metrics.micro], ["macro avg", r.metrics.macro]] as const) {
      rows.push([r.name, label, "", pct(a.recall), pct(a.precision), pct(a.fpr), pct(a.f1), pct(a.f2), "", "", "", ""]);
    }
  }
  return `<h2>Per category</h2>\n<p class="meta">One-vs-rest: a category counts as predicted when the answer names it.</p>\n${table(header, rows)}`;
}

function confusionSection(runs: ReportRun[]): string {
  const parts = ["<h2>Confusion</h2>"];
  for (const r of runs) {
    const c = r.metrics.confusion;
    parts.push(`<h3>${e(r.name)}</h3>`);
    parts.push(table(["true \\ predicted", "offensive", "safe"], [["offensive", String(c.tp), String(c.fn)], ["safe", String(c.fp), String(c.tn)]]));
    const m = r.metrics.confusion_matrix;
    parts.push(table(["true \\ predicted", ...m.cols], m.rows.map((row, i) => [row, ...m.counts[i].map(String)])));
  }
  return parts.join("\n");
}

function curvesSection(runs: ReportRun[]): string {
  const withCurves = runs.map((r, i) => ({ r, color: PALETTE[i % PALETTE.length] })).filter((x) => x.r.curves);
  if (withCurves.length === 0) return "";
  const pr: Series[] = withCurves.map(({ r, color }) => ({ name: `${r.name} (AP ${pct(r.curves!.average_precision)})`, points: prPoints(r.curves!), color }));
  const roc: Series[] = withCurves.map(({ r, color }) => ({ name: `${r.name} (AUC ${pct(r.curves!.roc_auc)})`, points: rocPoints(r.curves!), color }));
  const domain: [number, number] = [0, 1];
  return [
    "<h2>Curves</h2>",
    '<div class="charts">',
    lineChartSvg(pr, { title: "Precision-recall", xLabel: "recall", yLabel: "precision", xDomain: domain, yDomain: domain }),
    lineChartSvg(roc, { title: "ROC", xLabel: "false-positive rate", yLabel: "recall (true-positive rate)", xDomain: domain, yDomain: domain, diagonal: true }),
    "</div>",
  ].join("\n");
}

function trainingSection(charts: TrainingChart[]): string {
  if (charts.length === 0) return "";
  const svgs = charts.map((c) => lineChartSvg(c.series, { title: c.title, xLabel: c.xLabel ?? "step", yLabel: c.yLabel }));
  return `<h2>Training</h2>\n<div class="charts">\n${svgs.join("\n")}\n</div>`;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function errorsSection(run: ReportRun, opts: ReportOptions): Promise<string> {
  const policy = run.metrics.unparseable_as;
  const max = opts.maxThumbnails ?? 48;
  const score = (p: Prediction) => p.score ?? NaN;
  const misses = run.predictions.filter((p) => outcomeOf(p, policy) === "fn");
  const alarms = run.predictions.filter((p) => outcomeOf(p, policy) === "fp");
  // Most confident mistakes first: misses by ascending score, false alarms by descending; unscored last.
  misses.sort((a, b) => (Number.isNaN(score(a)) ? 1 : Number.isNaN(score(b)) ? -1 : score(a) - score(b)));
  alarms.sort((a, b) => (Number.isNaN(score(a)) ? 1 : Number.isNaN(score(b)) ? -1 : score(b) - score(a)));

  const figure = async (p: Prediction, kind: "fn" | "fp"): Promise<string> => {
    const blurred = !opts.unblur && p.labels.length > 0;
    let img: string;
    const source = opts.imageOf ? opts.imageOf(p) : p.imagePath;
    if (source === undefined) img = `<div class="noimg">no image</div>`;
    else {
      const input = typeof source === "string" ? source : Buffer.from(source.buffer, source.byteOffset, source.byteLength);
      const t = await thumbnailDataUri(input, { size: opts.thumbSize ?? 128, blur: blurred, sigma: opts.blurSigma ?? 10 });
      img = "uri" in t ? `<img src="${t.uri}" alt="${e(p.id)}">` : `<div class="noimg" title="${e(t.error)}">image unavailable</div>`;
    }
    const lines = [
      `<b>${e(p.id)}</b>${blurred && img.startsWith("<img") ? ' <span class="badge">blurred</span>' : ""}`,
      `true: ${e(p.labels.length ? p.labels.join(", ") : "safe")}`,
      `predicted: ${e(describePrediction(p.predicted))}`,
      `score: ${p.score === undefined ? "n/a" : e(p.score.toFixed(3))}`,
    ];
    return `<figure class="thumb ${kind}" data-outcome="${kind}" data-blurred="${blurred}">${img}<figcaption>${lines.join("<br>")}</figcaption></figure>`;
  };
  const block = async (title: string, items: Prediction[], kind: "fn" | "fp") => {
    const shown = items.slice(0, max);
    const figs = await mapLimit(shown, 4, (p) => figure(p, kind));
    const more = items.length > shown.length ? ` (showing ${shown.length})` : "";
    return `<h3>${e(title)}: ${items.length}${more}</h3>\n<div class="thumbs">\n${figs.join("\n")}\n</div>`;
  };
  return [
    `<h2>Errors: ${e(run.name)}</h2>`,
    await block("Misses (offensive images not flagged)", misses, "fn"),
    await block("False alarms (safe images flagged)", alarms, "fp"),
  ].join("\n");
}

/** Builds the report's HTML text. */
export async function renderReport(opts: ReportOptions): Promise<string> {
  if (opts.runs.length === 0) throw new Error("writeReport: no runs to report");
  const title = opts.title ?? "Evaluation report";
  const now = opts.now ?? new Date();
  const meta = [
    `generated ${now.toISOString()}`,
    `categories: ${opts.categories.join(", ") || "(none)"}`,
    `${opts.runs[0].metrics.n} images in the first run`,
    opts.unblur ? "thumbnails unblurred" : "thumbnails of offensive-labelled images blurred",
  ];
  const errors: string[] = [];
  for (const r of opts.runs) errors.push(await errorsSection(r, opts));
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${e(title)}</title>`,
    `<style>${CSS}</style>`,
    "</head><body>",
    `<h1>${e(title)}</h1>`,
    `<p class="meta">${meta.map(e).join(" &middot; ")}</p>`,
    `<p class="meta">Recall = share of offensive images flagged (any category). FPR = share of safe images flagged. n/a = undefined (0/0).</p>`,
    comparisonSection(opts.runs),
    priceSection(opts.runs, opts.priceBaseline),
    subsetSection(opts.subsets),
    thresholdSection(opts.runs, opts.recallTargets ?? [0.9, 0.95, 0.99]),
    decisionsSection(opts.runs, opts.split ?? "test", opts.categories),
    calibrationSection(opts.runs, opts.split ?? "test"),
    perCategorySection(opts.runs, opts.categories),
    confusionSection(opts.runs),
    curvesSection(opts.runs),
    sweepSection(opts.runs),
    trainingSection(opts.trainingCharts ?? []),
    ...errors,
    "</body></html>",
    "",
  ]
    .filter((x) => x !== "")
    .join("\n");
}

/** Writes `<outDir>/report.html` (creating outDir) and returns its path. */
export async function writeReport(outDir: string, opts: ReportOptions): Promise<string> {
  const html = await renderReport(opts);
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, opts.fileName ?? "report.html");
  fs.writeFileSync(file, html);
  return file;
}
