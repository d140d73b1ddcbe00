// `vlm-grpo eval` (one model or --compare several); `vlm-grpo predict` lives in predict.ts.
import path from "node:path";
import { explicitKeys, explicitPrompt } from "../../config/explicit_keys.js";
import { loadConfig } from "../../config/load.js";
import { runConfigSchema } from "../../config/run_config.js";
import { loadSplits } from "../../data/splits_from_config.js";
import { type EvalTarget, runEvaluation, saveEvaluationThresholds } from "../../eval/run_eval.js";
import { formatSubsetTable } from "../../eval/subset_table.js";
import { readPolicyCard } from "../../policy/model_card.js";
import { flag, has, parseArgs, UsageError } from "../args.js";
import { runDataParallel } from "../distributed.js";
import { configHelp } from "./train_cmds.js";

export { predictCommand } from "./predict.js";

export async function evalCommand(argv: readonly string[]): Promise<number> {
  const p = parseArgs(
    argv,
    { config: { value: true }, compare: { value: true, repeat: true }, lora: { value: true }, out: { value: true }, "save-thresholds": { value: false }, help: { value: false } },
    { allowOverrides: true },
  );
  if (has(p, "help")) {
    console.log(configHelp("eval", " [--compare NAME=DIR ...] [--lora DIR] [--out DIR] [--save-thresholds]"));
    return 0;
  }
  const overrides = [...p.overrides];
  if (has(p, "save-thresholds")) overrides.push("--eval.save_thresholds", "true");
  const cfg = loadConfig(runConfigSchema, { file: flag(p, "config"), overrides });
  const targets: EvalTarget[] = [];
  for (const c of p.flags.get("compare") ?? []) {
    const eq = c.indexOf("=");
    if (eq <= 0) throw new UsageError(`--compare expects NAME=MODEL_DIR (e.g. --compare sft=runs/sft/final), got '${c}'`);
    targets.push({ name: c.slice(0, eq), model: c.slice(eq + 1) });
  }
  if (cfg.model) targets.unshift({ name: path.basename(path.resolve(cfg.model)), model: cfg.model, lora: flag(p, "lora") });
  if (targets.length === 0) throw new UsageError("give --model DIR and/or --compare NAME=DIR");
  if (cfg.eval.save_thresholds && !cfg.model) throw new UsageError("--save-thresholds saves into the --model folder; give --model DIR");

  // The prompt: what the user set, the rest from each model's card. The dataset's
  // categories follow the models' cards unless data.categories is set.
  const isSet = explicitKeys(flag(p, "config"), overrides);
  const prompt = explicitPrompt(cfg, isSet);
  if (!isSet("data.categories")) {
    const cards = targets.map((t) => ({ t, card: readPolicyCard(t.model, t.lora).card })).filter((x) => x.card);
    if (cards.length > 0) {
      const first = cards[0];
      const other = cards.find((x) => x.card!.categories.join("\n") !== first.card!.categories.join("\n"));
      if (other) {
        throw new UsageError(
          `${first.t.name} was trained on categories [${first.card!.categories.join(", ")}] and ${other.t.name} on [${other.card!.categories.join(", ")}]; one evaluation needs one category list: set --data.categories`,
        );
      }
      cfg.data.categories = [...first.card!.categories];
      prompt.categories = [...first.card!.categories]; // also for compared folders without a card
    }
  }
  const outDir = flag(p, "out") ?? path.join(cfg.output_dir, "eval");
  // Under torchrun or --nproc the ranks split the images; rank 0 prints and writes.
  return runDataParallel("eval", cfg, async (dp, cfg) => {
    const note = (l: string) => {
      if (dp.isMain) console.log(l);
    };
    const splits = await loadSplits(cfg.data, note);
    const evalSplit = splits[cfg.eval.split];
    const thrName = cfg.eval.threshold_split;
    const thr = thrName === "none" ? [] : thrName === cfg.eval.split ? evalSplit : splits[thrName];
    if (thrName === "none") {
      if (cfg.eval.save_thresholds) throw new UsageError("--save-thresholds needs a threshold split; eval.threshold_split is none");
    } else if (thr.length === 0) note(`eval: the ${thrName} split is empty: no calibration or thresholds (set data.val_fraction, or eval.threshold_split)`);
    else if (thr === evalSplit) note(`eval: thresholds are chosen on the evaluated ${thrName} split itself; their figures are optimistic`);
    const r = await runEvaluation(cfg, targets, evalSplit, outDir, { prompt, thresholdExamples: thr.length ? thr : undefined, thresholdSplit: thrName, dp });
    if (!dp.isMain) return 0;
    console.log(r.table);
    if (r.subsets) console.log(`By subset (the manifest's hard flag):\n${formatSubsetTable(r.subsets)}`);
    console.log(`metrics: ${r.metricsPath}${r.reportPath ? `\nreport:  ${r.reportPath}` : ""}`);
    if (cfg.eval.save_thresholds) {
      const file = saveEvaluationThresholds(r.evaluations[0], targets[0]);
      const rec = r.evaluations[0].thresholds!;
      console.log(`thresholds saved: ${file} (target recalls ${rec.sets.map((s) => s.target_recall).join(", ")}; default ${rec.default_target_recall}; chosen on ${rec.images} ${rec.split} images)`);
    }
    return 0;
  });
}
