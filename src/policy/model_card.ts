// The model card: `vlm_grpo.json` in a model folder, saying what the folder
// was trained with and, once an evaluation has chosen them, the thresholds
// to decide with. predict, eval and the server read it, so that a model is
// always asked the question it was trained on and decides as its evaluation
// chose. A folder without a card (a Hugging Face checkpoint) keeps the
// built-in prompt and categories.
//
// Format, version 1 (every key is written; readers refuse other versions):
//
//   {
//     "vlm_grpo_card": 1,
//     "prompt": {"system_prompt": "...", "user_prompt": "... {categories} ...", "allow_think": false},
//     "categories": ["nudity", "weapons"],
//     "answer_format": "answer_tags",   <answer>nudity, weapons</answer> or <answer>safe</answer>
//                                        (src/data/prompt.ts writes it, src/rewards/answer_parser.ts reads it)
//     "score": "p_offensive",           1 - P(first answer token is "safe"), see policy/answer_probe.ts
//     "trained": {"base_model": "/abs/base", "saved_at": "2026-...Z"} | null   (null: not saved by a trainer),
//     "thresholds": null | ThresholdRecord (policy/thresholds.ts: calibration, the split and
//                    images they were chosen on, one set per target recall with its figures)
//   }
//
// `{categories}` in the prompt texts stays a placeholder: it is filled from
// `categories` when the prompt is built (src/data/prompt.ts).
import fs from "node:fs";
import path from "node:path";
import { type PromptConfig, resolvePromptConfig, validateCategories } from "../data/prompt.js";
import { writeTextFileAtomic } from "../io/atomic.js";
import { checkThresholdRecord, type ThresholdRecord } from "./thresholds.js";

/** The card's file name inside a model folder. */
export const MODEL_CARD_FILE = "vlm_grpo.json";
/** The card format this code reads and writes. */
export const MODEL_CARD_VERSION = 1;

/** The prompt as the card stores it (the run config's key names). */
export interface CardPrompt {
  system_prompt: string;
  user_prompt: string;
  allow_think: boolean;
}

/** Where the weights came from. */
export interface CardTraining {
  /** The folder training started from. */
  base_model: string;
  /** ISO 8601 time of the save. */
  saved_at: string;
}

export interface ModelCard {
  vlm_grpo_card: typeof MODEL_CARD_VERSION;
  prompt: CardPrompt;
  categories: string[];
  answer_format: "answer_tags";
  score: "p_offensive";
  trained: CardTraining | null;
  thresholds: ThresholdRecord | null;
}

/** The card of a freshly trained folder: the prompt and categories it was trained with, no thresholds yet. */
export function makeModelCard(prompt: PromptConfig, trained: CardTraining | null): ModelCard {
  return {
    vlm_grpo_card: MODEL_CARD_VERSION,
    prompt: { system_prompt: prompt.systemPrompt ?? "", user_prompt: prompt.userPrompt, allow_think: prompt.allowThink },
    categories: [...prompt.categories],
    answer_format: "answer_tags",
    score: "p_offensive",
    trained,
    thresholds: null,
  };
}

/** The card's prompt as the policy layer's PromptConfig. */
export function cardPromptConfig(card: ModelCard): PromptConfig {
  return resolvePromptConfig({ systemPrompt: card.prompt.system_prompt, userPrompt: card.prompt.user_prompt, allowThink: card.prompt.allow_think, categories: card.categories });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Checks a parsed card; errors name the file and the key. */
export function checkModelCard(raw: unknown, file: string): ModelCard {
  const bad = (key: string, want: string, got: unknown) => new Error(`${file}: ${key}: expected ${want}, got ${JSON.stringify(got)}`);
  if (!isObject(raw)) throw new Error(`${file}: expected a JSON object (a vlm-grpo model card)`);
  if (raw.vlm_grpo_card !== MODEL_CARD_VERSION) {
    throw new Error(`${file}: vlm_grpo_card: this vlm-grpo reads card version ${MODEL_CARD_VERSION}, the file says ${JSON.stringify(raw.vlm_grpo_card)}`);
  }
  const p = raw.prompt;
  if (!isObject(p)) throw bad("prompt", "an object {system_prompt, user_prompt, allow_think}", p);
  if (typeof p.system_prompt !== "string") throw bad("prompt.system_prompt", "a string", p.system_prompt);
  if (typeof p.user_prompt !== "string" || !p.user_prompt.includes("{categories}")) throw bad("prompt.user_prompt", "a string containing {categories}", p.user_prompt);
  if (typeof p.allow_think !== "boolean") throw bad("prompt.allow_think", "true or false", p.allow_think);
  if (!Array.isArray(raw.categories) || !raw.categories.every((c) => typeof c === "string")) throw bad("categories", "a list of category names", raw.categories);
  validateCategories(raw.categories as string[], `${file}: categories`);
  if (raw.answer_format !== "answer_tags") throw bad("answer_format", '"answer_tags"', raw.answer_format);
  if (raw.score !== "p_offensive") throw bad("score", '"p_offensive"', raw.score);
  const t = raw.trained;
  if (t !== null && !(isObject(t) && typeof t.base_model === "string" && typeof t.saved_at === "string")) {
    throw bad("trained", "null or {base_model, saved_at} strings", t);
  }
  const thresholds = raw.thresholds === null || raw.thresholds === undefined ? null : checkThresholdRecord(raw.thresholds, raw.categories as string[], `${file}: thresholds`);
  return {
    vlm_grpo_card: MODEL_CARD_VERSION,
    prompt: { system_prompt: p.system_prompt, user_prompt: p.user_prompt, allow_think: p.allow_think },
    categories: [...(raw.categories as string[])],
    answer_format: "answer_tags",
    score: "p_offensive",
    trained: t === null ? null : { base_model: String((t as Record<string, unknown>).base_model), saved_at: String((t as Record<string, unknown>).saved_at) },
    thresholds,
  };
}

/** The card of a model folder, or null when it has none. A card that cannot be read is an error naming the file. */
export function readModelCard(modelDir: string): ModelCard | null {
  const file = path.join(modelDir, MODEL_CARD_FILE);
  if (!fs.existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return checkModelCard(raw, file);
}

/** Writes (replaces) the card of a model folder atomically. */
export function writeModelCard(modelDir: string, card: ModelCard): string {
  if (!fs.existsSync(modelDir)) throw new Error(`writeModelCard: model folder ${modelDir} does not exist`);
  const file = path.join(modelDir, MODEL_CARD_FILE);
  checkModelCard(JSON.parse(JSON.stringify(card)), file);
  writeTextFileAtomic(file, JSON.stringify(card, null, 2) + "\n");
  return file;
}

/** The card that describes a model folder with an optional adapter on top: the adapter's when it has one, else the folder's. */
export function readPolicyCard(modelDir: string, adapterDir?: string): { card: ModelCard | null; dir: string } {
  const fromAdapter = adapterDir ? readModelCard(adapterDir) : null;
  if (fromAdapter) return { card: fromAdapter, dir: adapterDir! };
  return { card: readModelCard(modelDir), dir: modelDir };
}

/** The prompt fields (and "categories") in which a card differs from a prompt; [] when they agree. */
export function cardPromptDifferences(card: ModelCard, prompt: PromptConfig): string[] {
  const asked = makeModelCard(prompt, null);
  const diff: string[] = (["system_prompt", "user_prompt", "allow_think"] as const).filter((k) => card.prompt[k] !== asked.prompt[k]);
  if (JSON.stringify(card.categories) !== JSON.stringify(asked.categories)) diff.push("categories");
  return diff;
}

/**
 * Saves thresholds into a model folder's card (atomically; the rest of the
 * card is kept). A folder without a card gets one describing the prompt the
 * thresholds were chosen with, so that predict asks the same question. A
 * card whose prompt differs from that one is refused: its thresholds would
 * not fit the question predict asks.
 */
export function saveThresholds(modelDir: string, thresholds: ThresholdRecord, prompt: PromptConfig): string {
  const card = readModelCard(modelDir) ?? makeModelCard(prompt, null);
  const diff = cardPromptDifferences(card, prompt);
  if (diff.length > 0) {
    throw new Error(
      `${path.join(modelDir, MODEL_CARD_FILE)}: the thresholds were chosen with another ${diff.join(", ")} than the card's; evaluate without overriding the prompt (or edit the card) before saving thresholds`,
    );
  }
  return writeModelCard(modelDir, { ...card, thresholds });
}
