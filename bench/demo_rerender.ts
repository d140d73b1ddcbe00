// Re-renders a demo run's report.html from its predictions.jsonl and
// training logs with the current report code (e.g. after changing the
// report), without re-running any model.
//
//   node dist/bench/demo_rerender.js runs/demo [--out DIR]
import fs from "node:fs";
import path from "node:path";
import { curvesFromPredictions } from "../src/eval/curves.js";
import { computeMetrics, type Prediction } from "../src/eval/metrics.js";
import { writeReport } from "../src/eval/report.js";
import { trainingCharts } from "../src/eval/training_charts.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: demo_rerender.js RUN_DIR [--out DIR]");
const outAt = process.argv.indexOf("--out");
const out = outAt > 0 ? process.argv[outAt + 1] : dir;
const cfg = JSON.parse(fs.readFileSync(path.join(dir, "demo_config.json"), "utf8"));
const categories: string[] = cfg.data.categories;
const byModel = new Map<string, Prediction[]>();
for (const line of fs.readFileSync(path.join(dir, "predictions.jsonl"), "utf8").split("\n").filter(Boolean)) {
  const p = JSON.parse(line) as Prediction & { model: string };
  if (!byModel.has(p.model)) byModel.set(p.model, []);
  byModel.get(p.model)!.push(p);
}
const runs = [...byModel.entries()].map(([name, predictions]) => ({ name, predictions, metrics: computeMetrics(predictions, { categories, unparseableAs: cfg.eval.unparseable_as }), curves: curvesFromPredictions(predictions) }));
const grpoLogs = ["grpo", "grpo-symmetric"].filter((d) => fs.existsSync(path.join(dir, d, "metrics.jsonl"))).map((d) => ({ name: d.replace("-", "_"), file: path.join(dir, d, "metrics.jsonl") }));
const file = await writeReport(out, {
  runs,
  categories,
  unblur: cfg.eval.unblur,
  title: "vlm-grpo demo: base vs SFT vs GRPO (synthetic stand-in data)",
  recallTargets: [cfg.eval.target_recall],
  trainingCharts: trainingCharts({ name: "sft", file: path.join(dir, "sft", "metrics.jsonl") }, grpoLogs),
  priceBaseline: "sft",
});
console.log(file);
