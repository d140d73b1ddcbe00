// `vlm-grpo predict`: decisions for image files, folders, globs and lists,
// one row per image (JSONL or CSV), through the same decide() as eval.
import fs from "node:fs";
import path from "node:path";
import { loadConfig } from "../../config/load.js";
import { explicitKeys, explicitPrompt } from "../../config/explicit_keys.js";
import { runConfigSchema } from "../../config/run_config.js";
import { collectImageInputs, readListFile } from "../../data/inputs.js";
import type { Example } from "../../data/types.js";
import { Progress } from "../../io/progress.js";
import { classifyAcrossRanks } from "../../eval/sharded.js";
import { decide, type Decision, type DecisionRule, ruleFromCard } from "../../policy/decide.js";
import { cardPromptDifferences, MODEL_CARD_FILE, readPolicyCard } from "../../policy/model_card.js";
import { loadPolicy } from "../../policy/policy.js";
import { flag, has, numberFlag, parseArgs, UsageError } from "../args.js";
import { runDataParallel } from "../distributed.js";

/** Exit code when every input was decided. */
export const EXIT_OK = 0;
/** Exit code when some inputs could not be read (their rows carry `error`); the others were decided. */
export const EXIT_SOME_FAILED = 3;

const USAGE = `usage: vlm-grpo predict --model DIR [options] INPUT... [--list FILE]
Decides each image: flagged or not, which categories, the score, and why.
INPUT is an image file, a folder (every image below it), or a quoted glob
('photos/**/*.jpg'); --list FILE reads one input per line.

  --model DIR            model folder; its vlm_grpo.json card gives the prompt,
                         categories and saved thresholds (eval --save-thresholds)
  --lora DIR             a PEFT adapter on top (its own card wins when it has one)
  --threshold X          flag when the score >= X (the calibrated score when the
                         card has a calibration; saved category thresholds still name
                         the categories)
  --target-recall R      use the thresholds saved for target recall R
  --use-answer           decide from the model's answer even when thresholds are saved
                         (default: the saved default thresholds, else the answer)
  --out FILE             write rows there (default stdout)
  --format jsonl|csv     default jsonl
  --batch-size N         images per batch (default 8); progress goes to stderr
  --device D             cpu, cuda, cuda:N (default cpu)
  --dtype float32|bfloat16
  --max-new-tokens N     answer length (default 24)
  --max-pixels N         refuse larger images (default 64000000)
  --categories a,b       override the card's categories (then saved thresholds do not apply)
  --config FILE, --prompt.user_prompt ... override the card's prompt the same way

Rows: image, flagged (true/false, null on error), categories, score, threshold,
source (answer, or which thresholds), answer_kind, answer, category_scores, error.
With --nproc N (or under torchrun) the workers split the batches and the
first writes every row, in input order.
Exit code: 0 every image decided; ${EXIT_SOME_FAILED} some images could not be read (error rows,
the rest decided); 2 usage error; 1 any other failure.`;

/** One output row. */
export interface PredictRow {
  image: string;
  flagged: boolean | null;
  categories: string[];
  score: number | null;
  threshold: number | null;
  source: string;
  answer_kind: Decision["answerKind"];
  answer: string;
  category_scores: Record<string, number>;
  error: string | null;
}

const csvCell = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

/** A row as CSV cells, in the order of csvHeader(categories). */
export function csvHeader(categories: readonly string[]): string {
  return ["image", "flagged", "categories", "score", "threshold", "source", "answer_kind", "answer", ...categories.map((c) => `score_${c}`), "error"].map(csvCell).join(",");
}

export function csvRow(r: PredictRow, categories: readonly string[]): string {
  const num = (v: number | null | undefined) => (v === null || v === undefined ? "" : String(v));
  return [r.image, r.flagged === null ? "" : String(r.flagged), r.categories.join(";"), num(r.score), num(r.threshold), r.source, r.answer_kind, r.answer, ...categories.map((c) => num(r.category_scores[c])), r.error ?? ""].map(csvCell).join(",");
}

export async function predictCommand(argv: readonly string[]): Promise<number> {
  const p = parseArgs(
    argv,
    {
      model: { value: true },
      lora: { value: true },
      categories: { value: true },
      config: { value: true },
      list: { value: true, repeat: true },
      threshold: { value: true },
      "target-recall": { value: true },
      "use-answer": { value: false },
      out: { value: true },
      format: { value: true },
      "batch-size": { value: true },
      device: { value: true },
      dtype: { value: true },
      "max-new-tokens": { value: true },
      "max-pixels": { value: true },
      help: { value: false },
    },
    { allowOverrides: true },
  );
  if (has(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  const inputs = [...p.positionals, ...(p.flags.get("list") ?? []).flatMap(readListFile)];
  if (inputs.length === 0) throw new UsageError(`no images given\n${USAGE}`);
  const model = flag(p, "model");
  if (!model) throw new UsageError("--model DIR is required");
  const format = flag(p, "format") ?? "jsonl";
  if (format !== "jsonl" && format !== "csv") throw new UsageError(`--format: expected jsonl or csv, got '${format}'`);
  const dtype = flag(p, "dtype") ?? "float32";
  if (dtype !== "float32" && dtype !== "bfloat16") throw new UsageError(`--dtype: expected float32 or bfloat16, got '${dtype}'`);
  const chosen = ["threshold", "target-recall", "use-answer"].filter((k) => has(p, k));
  if (chosen.length > 1) throw new UsageError(`--${chosen.join(" and --")} exclude each other`);
  const threshold = has(p, "threshold") ? numberFlag(p, "threshold", 0, { min: 0, max: 1 }) : undefined;
  const targetRecall = has(p, "target-recall") ? numberFlag(p, "target-recall", 0, { min: 0, max: 1 }) : undefined;
  const batchSize = numberFlag(p, "batch-size", 8, { int: true, min: 1 });
  const maxNewTokens = numberFlag(p, "max-new-tokens", 24, { int: true, min: 1 });
  const maxPixels = numberFlag(p, "max-pixels", 64_000_000, { int: true, min: 1 });

  // Prompt: only what the user set overrides the model's card.
  const overrides = [...p.overrides];
  const cats = flag(p, "categories");
  if (cats) overrides.push("--data.categories", JSON.stringify(cats.split(",").map((c) => c.trim())));
  const cfg = loadConfig(runConfigSchema, { file: flag(p, "config"), overrides });
  const prompt = explicitPrompt(cfg, explicitKeys(flag(p, "config"), overrides));

  const collected = collectImageInputs(inputs);
  const lora = flag(p, "lora");
  if (flag(p, "device")) cfg.device = flag(p, "device")!;
  // Under torchrun or --nproc every rank reads the same input list, classifies
  // its share of each chunk of batches, and rank 0 writes every row in order.
  return runDataParallel("predict", cfg, async (dp, cfg) => {
  const say = (s: string) => {
    if (dp.isMain) process.stderr.write(s);
  };
  const policy = await loadPolicy({ modelDir: model, adapterDir: lora, prompt, device: cfg.device, dtype, imageCache: false, maxPixels });
  let out: { write(s: string): void; close(): void };
  if (!dp.isMain) out = { write: () => {}, close: () => {} };
  else if (flag(p, "out")) {
    const fd = fs.openSync(flag(p, "out")!, "w");
    out = { write: (s) => fs.writeSync(fd, s), close: () => fs.closeSync(fd) };
  } else out = { write: (s) => process.stdout.write(s), close: () => {} };
  let failed = 0;
  try {
    const cardPath = path.join(readPolicyCard(model, lora).dir, MODEL_CARD_FILE);
    const diff = policy.card ? cardPromptDifferences(policy.card, policy.prompt) : [];
    let rule: DecisionRule;
    if (diff.length > 0 && policy.card?.thresholds && !has(p, "use-answer") && threshold === undefined) {
      if (targetRecall !== undefined) throw new UsageError(`the saved thresholds in ${cardPath} were chosen with the card's ${diff.join(", ")}, which this run overrides; drop the override, or pass --threshold X or --use-answer`);
      say(`predict: the prompt overrides the card's ${diff.join(", ")}; its saved thresholds do not apply, deciding from the answer\n`);
      rule = { kind: "answer" };
    } else rule = ruleFromCard(diff.length > 0 ? null : policy.card, { threshold, targetRecall, useAnswer: has(p, "use-answer") }, cardPath);
    const categories = policy.prompt.categories;
    const sources = new Set(Object.values(policy.promptSource));
    const promptFrom = sources.has("card") ? `prompt and categories from ${cardPath}${sources.has("caller") ? " with your overrides" : ""}` : sources.has("caller") ? "your prompt" : "the built-in prompt (no vlm_grpo.json)";
    say(`predict: ${collected.files.length} image(s) with ${model}; ${promptFrom}; deciding by ${rule.kind === "answer" ? "the answer" : rule.source}\n`);
    if (format === "csv") out.write(csvHeader(categories) + "\n");
    const emit = (r: PredictRow) => out.write((format === "csv" ? csvRow(r, categories) : JSON.stringify(r)) + "\n");
    const errorRow = (image: string, error: string): PredictRow => ({ image, flagged: null, categories: [], score: null, threshold: null, source: rule.kind === "answer" ? "answer" : rule.source, answer_kind: "error", answer: "", category_scores: {}, error });
    const progress = dp.isMain ? new Progress({ total: collected.files.length, label: "predict", unit: "img" }) : null;
    // Batches in input order; an input that gave no file is an error row where it stood.
    let pending: Example[] = [];
    const flush = async () => {
      if (pending.length === 0) return;
      const results = await classifyAcrossRanks(dp, policy, pending, { batchSize, maxNewTokens, onImageError: "report" });
      for (const c of results) {
        const d = decide(c, rule);
        if (d.error !== undefined) failed++;
        emit({ image: c.id, flagged: d.flagged, categories: d.categories, score: d.score, threshold: d.threshold, source: d.source, answer_kind: d.answerKind, answer: c.answer, category_scores: c.categoryScores, error: d.error ?? null });
      }
      progress?.tick(pending.length);
      pending = [];
    };
    for (const item of collected.items) {
      if ("problem" in item) {
        await flush();
        failed++;
        emit(errorRow(item.problem.input, item.problem.reason));
        continue;
      }
      pending.push({ id: item.file, image: { path: item.file }, labels: [], source: { file: item.file } });
      if (pending.length >= batchSize * dp.worldSize) await flush();
    }
    await flush();
    progress?.done();
    if (failed > 0) say(`predict: ${failed} input(s) could not be read (rows with "error"); exit code ${EXIT_SOME_FAILED}\n`);
  } finally {
    out.close();
    policy.dispose();
  }
  return failed > 0 ? EXIT_SOME_FAILED : EXIT_OK;
  });
}
