// `vlm-grpo eval` (one model or --compare several) and `vlm-grpo predict`.
import path from "node:path";
import { loadConfig } from "../../config/load.js";
import { runConfigSchema } from "../../config/run_config.js";
import { validate } from "../../config/schema.js";
import { loadSplits } from "../../data/splits_from_config.js";
import type { Example } from "../../data/types.js";
import { evaluateModel, type EvalTarget, runEvaluation } from "../../eval/run_eval.js";
import { flag, has, parseArgs, UsageError } from "../args.js";
import { runDataParallel } from "../distributed.js";
import { configHelp } from "./train_cmds.js";

export async function evalCommand(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, { config: { value: true }, compare: { value: true, repeat: true }, lora: { value: true }, out: { value: true }, help: { value: false } }, { allowOverrides: true });
  if (has(p, "help")) {
    console.log(configHelp("eval", " [--compare NAME=DIR ...] [--lora DIR] [--out DIR]"));
    return 0;
  }
  const cfg = loadConfig(runConfigSchema, { file: flag(p, "config"), overrides: p.overrides });
  const targets: EvalTarget[] = [];
  for (const c of p.flags.get("compare") ?? []) {
    const eq = c.indexOf("=");
    if (eq <= 0) throw new UsageError(`--compare expects NAME=MODEL_DIR (e.g. --compare sft=runs/sft/final), got '${c}'`);
    targets.push({ name: c.slice(0, eq), model: c.slice(eq + 1) });
  }
  if (cfg.model) targets.unshift({ name: path.basename(path.resolve(cfg.model)), model: cfg.model, lora: flag(p, "lora") });
  if (targets.length === 0) throw new UsageError("vlm-grpo eval: give --model DIR and/or --compare NAME=DIR");
  const outDir = flag(p, "out") ?? path.join(cfg.output_dir, "eval");
  return runDataParallel("eval", cfg, async (dp, cfg) => {
    const splits = await loadSplits(cfg.data);
    const r = await runEvaluation(cfg, targets, splits[cfg.eval.split], outDir, { dp });
    if (!dp.isMain) return 0;
    console.log(r.table);
    console.log(`metrics: ${r.metricsPath}${r.reportPath ? `\nreport:  ${r.reportPath}` : ""}`);
    return 0;
  });
}

export async function predictCommand(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, { model: { value: true }, lora: { value: true }, categories: { value: true }, "batch-size": { value: true }, help: { value: false } });
  if (has(p, "help") || p.positionals.length === 0) {
    console.log("usage: vlm-grpo predict --model DIR [--lora DIR] [--categories nudity,weapons] IMAGE...\nprints one JSON line per image: decision, categories, score (P(offensive)) and the raw answer");
    return has(p, "help") ? 0 : 2;
  }
  const model = flag(p, "model");
  if (!model) throw new UsageError("vlm-grpo predict: --model DIR is required");
  const raw: Record<string, unknown> = { model };
  const cats = flag(p, "categories");
  if (cats) raw.data = { categories: cats.split(",").map((c) => c.trim()) };
  if (flag(p, "batch-size")) raw.eval = { batch_size: Number(flag(p, "batch-size")) };
  const cfg = validate(runConfigSchema, raw, { file: "predict options" });
  const examples: Example[] = p.positionals.map((f) => ({ id: f, image: { path: path.resolve(f) }, labels: [], source: { file: f } }));
  return runDataParallel("predict", cfg, async (dp, cfg) => {
    const r = await evaluateModel(cfg, { name: "predict", model, lora: flag(p, "lora") }, examples, { progress: false, dp });
    if (!dp.isMain) return 0;
    for (const pr of r.predictions) {
      const decision = pr.predicted.kind;
      console.log(JSON.stringify({ image: pr.id, decision, categories: pr.predicted.kind === "offensive" ? pr.predicted.categories : [], score: pr.score, answer: (pr as { answer?: string }).answer }));
    }
    return 0;
  });
}
