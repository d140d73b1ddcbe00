import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import sharp from "sharp";
import { formatCompareTable, formatMetric } from "../../src/eval/compare_table.js";
import { curvesFromPredictions } from "../../src/eval/curves.js";
import { computeMetrics, type Prediction } from "../../src/eval/metrics.js";
import { writeReport } from "../../src/eval/report.js";
import { escapeHtml, formatTick, lineChartSvg, niceTicks } from "../../src/eval/svg_plot.js";
import { makeThumbnail } from "../../src/eval/thumbnails.js";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "vlm-report-"));
const CATS = ["nudity", "guns & <knives>"];

/** A 96x64 checkerboard PNG with 8 px squares (lots of high-frequency detail for the blur check). */
async function checkerboard(file: string, colour: [number, number, number]): Promise<string> {
  const w = 96;
  const h = 64;
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const on = ((x >> 3) + (y >> 3)) % 2 === 0;
      for (let c = 0; c < 3; c++) px[(y * w + x) * 3 + c] = on ? colour[c] : 255 - colour[c];
    }
  await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
  return file;
}

/** Standard deviation of a JPEG's grey levels (blur lowers it on a checkerboard). */
async function greyStd(jpeg: Buffer): Promise<number> {
  const raw = await sharp(jpeg).greyscale().raw().toBuffer();
  const mean = raw.reduce((a, b) => a + b, 0) / raw.length;
  return Math.sqrt(raw.reduce((a, b) => a + (b - mean) ** 2, 0) / raw.length);
}

async function fixture(dir: string): Promise<Prediction[]> {
  const img = (n: string, c: [number, number, number]) => checkerboard(path.join(dir, `${n}.png`), c);
  return [
    { id: "hit-1", labels: ["nudity"], predicted: { kind: "offensive", categories: ["nudity"] }, score: 0.9, imagePath: await img("a", [200, 30, 30]) },
    { id: "miss<1>&", labels: ["guns & <knives>"], predicted: { kind: "safe" }, score: 0.2, imagePath: await img("b", [30, 200, 30]) },
    { id: "miss-2", labels: ["nudity"], predicted: { kind: "unparseable" }, imagePath: path.join(dir, "does-not-exist.png") },
    { id: "alarm-1", labels: [], predicted: { kind: "offensive", categories: ["guns & <knives>"] }, score: 0.7, imagePath: await img("c", [30, 30, 200]) },
    { id: "ok-1", labels: [], predicted: { kind: "safe" }, score: 0.1, imagePath: await img("d", [90, 90, 90]) },
    { id: "ok-2", labels: [], predicted: { kind: "safe" }, score: 0.3 },
  ];
}

function run(name: string, predictions: Prediction[]) {
  return { name, metrics: computeMetrics(predictions, { categories: CATS }), curves: curvesFromPredictions(predictions), predictions };
}

/** The data URI of the thumbnail whose caption names `id` (escaped). */
function thumbOf(html: string, id: string): { blurred: string; uri: string } {
  const fig = html.split("<figure").find((f) => f.includes(`<b>${escapeHtml(id)}</b>`));
  assert.ok(fig, `no thumbnail for ${id}`);
  return { blurred: /data-blurred="(\w+)"/.exec(fig)![1], uri: /src="data:image\/jpeg;base64,([^"]+)"/.exec(fig)?.[1] ?? "" };
}

test("report: self-contained HTML with tables, SVG curves, escaped text and ordered error thumbnails", async () => {
  const dir = tmp();
  const preds = await fixture(dir);
  const weaker = preds.map((p) => (p.id === "hit-1" ? { ...p, predicted: { kind: "safe" as const }, score: 0.25 } : p));
  const file = await writeReport(path.join(dir, "out"), {
    runs: [run('base <"model">', weaker), run("grpo&sft", preds)],
    categories: CATS,
    title: "Eval <v1>",
    trainingCharts: [{ title: "loss", series: [{ name: "train/loss", points: [[1, 2], [2, 1.5], [3, 1.2]] }] }],
    now: new Date("2026-01-02T03:04:05Z"),
  });
  assert.equal(file, path.join(dir, "out", "report.html"));
  const html = fs.readFileSync(file, "utf8");
  assert.ok(html.startsWith("<!doctype html>"));
  // Self-contained: nothing fetched when opened.
  assert.ok(!/(src|href)="(https?:|\/\/)/.test(html));
  assert.ok(!html.includes("<link") && !html.includes("<script"));
  // Escaping: run names, title, ids and category names appear only escaped.
  assert.ok(html.includes("<title>Eval &lt;v1&gt;</title>"));
  assert.ok(html.includes("base &lt;&quot;model&quot;&gt;"));
  assert.ok(html.includes("grpo&amp;sft"));
  assert.ok(html.includes("miss&lt;1&gt;&amp;"));
  assert.ok(html.includes("guns &amp; &lt;knives&gt;"));
  assert.ok(!html.includes("<knives>") && !html.includes('<"model">') && !html.includes("<v1>"));
  // Comparison table: recall is the first metric column; best recall marked.
  assert.ok(html.includes("<tr><th>run</th><th>recall</th><th>precision</th><th>fpr</th><th>f1</th><th>f2</th><th>accuracy</th><th>unparseable</th><th>roc_auc</th><th>ap</th>"));
  assert.ok(html.includes('<tr><td>grpo&amp;sft</td><td class="best">0.333</td>'));
  for (const h of ["<h2>Thresholds</h2>", "<h2>Per category</h2>", "<h2>Confusion</h2>", "<h2>Curves</h2>", "<h2>Training</h2>", "micro avg", "macro avg"]) assert.ok(html.includes(h), h);
  // PR, ROC, the threshold sweep and the training chart, each an inline SVG; one polyline per run on the curves.
  assert.equal((html.match(/<svg /g) ?? []).length, 4);
  assert.ok(html.includes("<h2>Threshold sweep</h2>") && html.includes('aria-label="Recall and FPR against the score threshold"'));
  // No price section without a baseline run.
  assert.ok(!html.includes("What the recall costs"));
  assert.ok(html.includes('aria-label="Precision-recall"') && html.includes('aria-label="ROC"'));
  // Errors: misses before false alarms; blurred flags follow the true labels.
  const section = html.slice(html.indexOf("<h2>Errors: grpo&amp;sft</h2>"));
  assert.ok(section.indexOf("Misses") < section.indexOf("False alarms"));
  assert.ok(section.indexOf(escapeHtml("miss<1>&")) < section.indexOf("alarm-1"));
  assert.match(section, /Misses \(offensive images not flagged\): 2</);
  assert.equal(thumbOf(section, "miss<1>&").blurred, "true");
  assert.equal(thumbOf(section, "alarm-1").blurred, "false");
  assert.ok(section.includes("image unavailable")); // miss-2's file is missing: reported, not fatal
  assert.ok(!section.includes(">hit-1<") && !section.includes(">ok-1<")); // correct answers are not shown
  assert.ok(section.includes("predicted: offensive: guns &amp; &lt;knives&gt;"));
  assert.ok(section.includes("score: 0.200") && section.includes("score: n/a"));
});

test("blurred thumbnails differ from unblurred ones (and unblur turns blurring off)", async () => {
  const dir = tmp();
  const preds = await fixture(dir);
  const blurred = fs.readFileSync(await writeReport(path.join(dir, "b"), { runs: [run("r", preds)], categories: CATS }), "utf8");
  const plain = fs.readFileSync(await writeReport(path.join(dir, "u"), { runs: [run("r", preds)], categories: CATS, unblur: true }), "utf8");
  const b = thumbOf(blurred, "miss<1>&");
  const u = thumbOf(plain, "miss<1>&");
  assert.equal(b.blurred, "true");
  assert.equal(u.blurred, "false");
  assert.notEqual(b.uri, u.uri);
  const sb = await greyStd(Buffer.from(b.uri, "base64"));
  const su = await greyStd(Buffer.from(u.uri, "base64"));
  assert.ok(sb < 0.5 * su, `blurred std ${sb} vs plain ${su}`);
  // Safe images are never blurred: the false alarm's thumbnail is the same in both.
  assert.equal(thumbOf(blurred, "alarm-1").uri, thumbOf(plain, "alarm-1").uri);
  const meta = await sharp(Buffer.from(u.uri, "base64")).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ["jpeg", 128, 85]); // 96x64 fitted inside 128x128
});

test("makeThumbnail: size and a clear error for unreadable input", async () => {
  const dir = tmp();
  const f = await checkerboard(path.join(dir, "x.png"), [0, 0, 0]);
  const meta = await sharp(await makeThumbnail(f, { size: 32 })).metadata();
  assert.deepEqual([meta.width, meta.height], [32, 21]);
  fs.writeFileSync(path.join(dir, "bad.jpg"), "not an image");
  await assert.rejects(makeThumbnail(path.join(dir, "bad.jpg")));
});

test("formatCompareTable: aligned columns, recall first, n/a for undefined", () => {
  const mk = (name: string, preds: Prediction[]) => ({ name, metrics: computeMetrics(preds, { categories: ["x"] }) });
  const a = mk("base", [
    { id: "1", labels: ["x"], predicted: { kind: "offensive", categories: ["x"] } },
    { id: "2", labels: ["x"], predicted: { kind: "safe" } },
    { id: "3", labels: [], predicted: { kind: "unparseable" } },
    { id: "4", labels: [], predicted: { kind: "safe" } },
  ]);
  const b = mk("grpo-long-name", [{ id: "1", labels: [], predicted: { kind: "safe" } }]);
  assert.equal(
    formatCompareTable([a, b]),
    [
      "run             recall  precision    fpr     f1     f2  accuracy  unparseable",
      "base             0.500      0.500  0.500  0.500  0.500     0.500        0.250",
      "grpo-long-name     n/a        n/a  0.000    n/a    n/a     1.000        0.000",
      "",
    ].join("\n"),
  );
  assert.equal(formatMetric(null), "n/a");
  assert.equal(formatMetric(2 / 3, 2), "0.67");
});

test("svg plot: nice ticks, escaped text, line breaks at NaN, diagonal", () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0, 7.3), [0, 2, 4, 6]);
  assert.deepEqual(niceTicks(-0.03, 0.12), [0, 0.05, 0.1]); // step 0.05 >= 0.15 / 5
  assert.equal(formatTick(0.30000000000000004), "0.3");
  assert.equal(formatTick(250000), "2.5e+5");
  const svg = lineChartSvg(
    [
      { name: "loss <train>", points: [[0, 1], [1, 0.5], [2, NaN], [3, 0.4], [4, 0.3]] },
      { name: "single", points: [[2, 0.7]] },
    ],
    { title: "A & B", xLabel: "step", diagonal: true, xDomain: [0, 4], yDomain: [0, 1] },
  );
  assert.ok(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.endsWith("</svg>"));
  assert.ok(svg.includes(">A &amp; B</text>") && svg.includes("loss &lt;train&gt;") && !svg.includes("<train>"));
  assert.equal((svg.match(/<polyline /g) ?? []).length, 2); // the NaN splits series 1 in two
  assert.equal((svg.match(/<circle /g) ?? []).length, 1); // a lone point is a dot
  assert.ok(svg.includes('stroke-dasharray="4 4"'));
  // x = 0 maps to the left edge of the plot (56 px) and x = 4 to the right (420 - 14).
  assert.ok(svg.includes('points="56,'), svg.slice(0, 200));
  assert.match(svg, / 406,\d+(\.\d+)?"/);
});

test("report: the price of recall against a baseline run (false alarms per 1,000 safe images)", async () => {
  const dir = tmp();
  const preds = await fixture(dir);
  // sft misses hit-1 and raises no false alarm; grpo catches it and flags alarm-1 (1 of 3 safe images).
  const sft = preds.map((p) => (p.id === "hit-1" ? { ...p, predicted: { kind: "safe" as const } } : p.id === "alarm-1" ? { ...p, predicted: { kind: "safe" as const } } : p));
  const file = await writeReport(path.join(dir, "out"), { runs: [run("base", sft), run("sft", sft), run("grpo", preds)], categories: CATS, priceBaseline: "sft", now: new Date("2026-01-02T03:04:05Z") });
  const html = fs.readFileSync(file, "utf8");
  const section = html.slice(html.indexOf("<h2>What the recall costs</h2>"), html.indexOf("<h2>Thresholds</h2>"));
  assert.ok(section.length > 0, "price section present");
  // grpo raises alarm-1 among the safe images: its row shows FPR x 1000.
  const m = computeMetrics(preds, { categories: CATS });
  assert.ok(section.includes(`<td>${(m.fpr! * 1000).toFixed(0)}</td>`), section);
  assert.match(section, /grpo vs sft: catches \d+ more of every 100 offensive images/);
  // Runs listed before the baseline (a random base model) are not priced.
  assert.ok(!section.includes("<td>base</td>") && !section.includes("base vs sft"));
});

test("report: the by-subset section lists each run's normal and hard rows, and is absent without hard flags", async () => {
  const dir = tmp();
  const preds = await fixture(dir);
  const subsets = [
    { run: "grpo", subset: "normal" as const, offensive: 144, caught: 141, safe: 336, recall: 141 / 144, fpr: 13 / 336 },
    { run: "grpo", subset: "hard" as const, offensive: 35, caught: 16, safe: 84, recall: 16 / 35, fpr: 27 / 84 },
  ];
  const html = fs.readFileSync(await writeReport(path.join(dir, "with"), { runs: [run("grpo", preds)], categories: CATS, subsets, now: new Date("2026-01-02T03:04:05Z") }), "utf8");
  const at = html.indexOf("<h2>By subset</h2>");
  assert.ok(at > 0, "section present");
  const section = html.slice(at, html.indexOf("</table>", at));
  assert.ok(section.includes("<tr><td>grpo</td><td>normal</td><td>141 of 144</td><td>0.979</td><td>336</td><td>0.039</td><td>39</td></tr>"), section);
  assert.ok(section.includes("<tr><td>grpo</td><td>hard</td><td>16 of 35</td><td>0.457</td><td>84</td><td>0.321</td><td>321</td></tr>"), section);
  const without = fs.readFileSync(await writeReport(path.join(dir, "without"), { runs: [run("grpo", preds)], categories: CATS, subsets: null, now: new Date("2026-01-02T03:04:05Z") }), "utf8");
  assert.ok(!without.includes("By subset"));
});
