// Where the server's decision rule comes from: an explicit --threshold, an
// evaluation's metrics.json (--threshold-from with --target-recall), or the
// model card (its saved default thresholds, else the answer). Every branch
// ends in a policy/decide.ts DecisionRule, so the server decides exactly as
// predict does for the same rule.
import fs from "node:fs";
import { type DecisionRule, ruleFromCard, ruleFromSet } from "../policy/decide.js";
import type { ModelCard } from "../policy/model_card.js";
import { checkThresholdRecord, thresholdSetFor } from "../policy/thresholds.js";

export interface ThresholdRequest {
  threshold?: number;
  /** An eval's metrics.json. */
  thresholdFrom?: string;
  /** With thresholdFrom: the model entry in it (default: the only one, else the last). */
  evalModel?: string;
  targetRecall?: number;
  useAnswer?: boolean;
}

/** The rule for a request; `cardPath` names the card in errors. */
export function resolveRule(card: ModelCard | null, categories: readonly string[], req: ThresholdRequest, cardPath: string): DecisionRule {
  if (req.thresholdFrom === undefined) return ruleFromCard(card, { threshold: req.threshold, targetRecall: req.targetRecall, useAnswer: req.useAnswer }, cardPath);
  const file = req.thresholdFrom;
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`--threshold-from ${file}: cannot read it as JSON (${(e as Error).message})`);
  }
  const names = Object.keys(json);
  if (names.length === 0) throw new Error(`--threshold-from ${file}: no evaluated model in it`);
  const name = req.evalModel ?? names[names.length - 1];
  const entry = json[name] as Record<string, unknown> | undefined;
  if (!entry || typeof entry !== "object") throw new Error(`--threshold-from ${file}: no model '${name}' (it has ${names.join(", ")})`);
  const where = `${file} [${name}]`;
  if (entry.thresholds !== null && entry.thresholds !== undefined) {
    const record = checkThresholdRecord(entry.thresholds, categories, `${where}: thresholds`);
    const set = thresholdSetFor(record, req.targetRecall, where);
    return ruleFromSet(set, record.calibration, `${where}: thresholds for recall ${set.target_recall} (chosen on ${record.split})`);
  }
  // An eval without a threshold split still records the raw-score threshold reaching its target recall on the evaluated split.
  const t = entry.threshold_for_target_recall as { target_recall?: number; threshold?: number } | null | undefined;
  if (t && typeof t.threshold === "number" && (req.targetRecall === undefined || Math.abs((t.target_recall ?? -1) - req.targetRecall) < 1e-9)) {
    return { kind: "threshold", overall: t.threshold, perCategory: {}, calibration: null, source: `${where}: threshold_for_target_recall ${t.target_recall} (raw score, on the evaluated split)` };
  }
  throw new Error(`${where}: no thresholds for target recall ${req.targetRecall ?? "(default)"}; run eval with a threshold split (eval.threshold_split) and that target recall`);
}
