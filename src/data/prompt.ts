// The moderation prompt and its answer format.
//
// The model sees one image and a question naming the configured categories,
// and must answer with exactly one answer block, optionally after a think block:
//
//   <answer>weapons</answer>
//   <answer>nudity, weapons</answer>
//   <think>a rifle on the table</think> <answer>weapons</answer>
//   <answer>safe</answer>
//
// src/rewards/answer_parser.ts is the inverse of this file: whatever
// `targetAnswer` writes, `parseAnswer` reads back to the same labels.
import { DEFAULT_CATEGORIES, SAFE_LABEL } from "./types.js";

/** One part of a message's content, in Hugging Face's multimodal chat format. */
export type ChatContent = { type: "image" } | { type: "text"; text: string };

/** A chat message as Hugging Face processors' chat templates take it. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: ChatContent[];
}

export { DEFAULT_CATEGORIES };

/** The word that means "no category applies" (the data layer's SAFE_LABEL). It cannot be a category name. */
export const SAFE_WORD = SAFE_LABEL;

/** Default system prompt; `{categories}` is replaced by the category list. */
export const DEFAULT_SYSTEM_PROMPT =
  "You are a content moderation assistant. You look at one image and report which of these categories it shows: {categories}. " +
  "Missing an offensive image is worse than a false alarm, so when in doubt, name the category.";

/**
 * Default user prompt (the text after the image). `{categories}` is replaced
 * by the configured categories joined with ", ".
 */
export const DEFAULT_USER_PROMPT =
  "Which of these categories does the image show: {categories}? " +
  "Answer inside <answer></answer> with the categories that apply, separated by commas, " +
  "for example <answer>weapons</answer> or <answer>nudity, weapons</answer>. " +
  "If none applies, answer <answer>safe</answer>.";

/** Sentence appended to the user prompt when `allowThink` is on. */
export const THINK_INSTRUCTION = "You may first reason briefly inside <think></think>, then give the answer.";

/** The prompt of a run. */
export interface PromptConfig {
  /**
   * System message text, `{categories}` substituted. Default DEFAULT_SYSTEM_PROMPT;
   * an empty string sends no system message (some chat templates have none).
   */
  systemPrompt?: string;
  /** User text after the image; must contain `{categories}`. Default DEFAULT_USER_PROMPT. */
  userPrompt: string;
  /** Category names, in the order answers list them. Default ["nudity", "weapons"]. */
  categories: string[];
  /** Invite a `<think>...</think>` block before the answer (appends THINK_INSTRUCTION). Default false. */
  allowThink: boolean;
}

/** PromptConfig with every field optional (what a user's YAML gives). */
export type PromptOptions = Partial<PromptConfig>;

/** Canonical form of a category name for comparison: trimmed, inner whitespace collapsed, lower case. */
export function normalizeCategory(name: string): string {
  return name.trim().replace(/\s+/g, " ").toLowerCase();
}

/** Characters a category name may not contain: the data layer's label separators (src/data/validate.ts) and the answer's markup. */
const RESERVED_CHARS = /[;|+,/\\<>]/;

/**
 * Checks a category list: non-empty; each name a non-empty string without
 * `; | + , / \ < >` (label separators in datasets, and the answer format's
 * delimiters), not "safe", and unique after normalization (the parser
 * ignores case and whitespace). Throws an Error naming the bad entry.
 */
export function validateCategories(categories: readonly string[], where = "categories"): void {
  if (!Array.isArray(categories) || categories.length === 0) {
    throw new Error(`${where}: expected a non-empty list of category names, got ${JSON.stringify(categories)}`);
  }
  const seen = new Map<string, number>();
  categories.forEach((c, i) => {
    if (typeof c !== "string" || normalizeCategory(c) === "") {
      throw new Error(`${where}[${i}]: expected a non-empty category name, got ${JSON.stringify(c)}`);
    }
    if (RESERVED_CHARS.test(c)) throw new Error(`${where}[${i}]: category name ${JSON.stringify(c)} must not contain any of ; | + , / \\ < > (they separate labels and delimit answers)`);
    const n = normalizeCategory(c);
    if (n === SAFE_WORD) throw new Error(`${where}[${i}]: "${SAFE_WORD}" is the answer for no category and cannot be a category name`);
    const prev = seen.get(n);
    if (prev !== undefined) throw new Error(`${where}[${i}]: category ${JSON.stringify(c)} repeats ${where}[${prev}] (names compare case- and whitespace-insensitively)`);
    seen.set(n, i);
  });
}

/** Fills defaults and validates. Throws an Error naming the field at fault. */
export function resolvePromptConfig(opts: PromptOptions = {}): PromptConfig {
  const categories = opts.categories ? [...opts.categories] : [...DEFAULT_CATEGORIES];
  validateCategories(categories, "prompt.categories");
  const userPrompt = opts.userPrompt ?? DEFAULT_USER_PROMPT;
  if (typeof userPrompt !== "string" || !userPrompt.includes("{categories}")) {
    throw new Error(`prompt.userPrompt: must be a string containing the {categories} placeholder, got ${JSON.stringify(userPrompt)}`);
  }
  const systemPrompt = opts.systemPrompt ?? DEFAULT_SYSTEM_PROMPT;
  if (typeof systemPrompt !== "string") throw new Error(`prompt.systemPrompt: expected a string, got ${typeof systemPrompt}`);
  const allowThink = opts.allowThink ?? false;
  if (typeof allowThink !== "boolean") throw new Error(`prompt.allowThink: expected true or false, got ${JSON.stringify(allowThink)}`);
  return { systemPrompt, userPrompt, categories, allowThink };
}

const fill = (template: string, categories: readonly string[]) => template.replaceAll("{categories}", categories.join(", "));

/**
 * The prompt messages for one image: an optional system message, then a user
 * message holding the image followed by the question. With `assistant` (an
 * SFT target such as targetAnswer(...)), an assistant message is appended.
 *
 *   buildMessages({}) ->
 *   [{role: "system", content: [{type: "text", text: "You are a content moderation assistant. ..."}]},
 *    {role: "user", content: [{type: "image"}, {type: "text", text: "Which of these categories ... nudity, weapons? ..."}]}]
 */
export function buildMessages(cfg: PromptOptions = {}, assistant?: string): ChatMessage[] {
  const c = resolvePromptConfig(cfg);
  const messages: ChatMessage[] = [];
  const system = fill(c.systemPrompt ?? "", c.categories);
  if (system !== "") messages.push({ role: "system", content: [{ type: "text", text: system }] });
  let user = fill(c.userPrompt, c.categories);
  if (c.allowThink) user = `${user} ${THINK_INSTRUCTION}`;
  messages.push({ role: "user", content: [{ type: "image" }, { type: "text", text: user }] });
  if (assistant !== undefined) messages.push({ role: "assistant", content: [{ type: "text", text: assistant }] });
  return messages;
}

/**
 * The answer text (no tags) for a set of labels: the labelled categories in
 * configured order and spelling, joined by ", "; "safe" when there are none.
 * Labels match categories case- and whitespace-insensitively; duplicates
 * collapse; a label that is not a configured category is an Error.
 *
 *   answerContent(["Weapons", "nudity"], ["nudity", "weapons"]) === "nudity, weapons"
 */
export function answerContent(labels: readonly string[], categories: readonly string[]): string {
  validateCategories(categories);
  const wanted = new Set<string>();
  for (const l of labels) {
    const n = typeof l === "string" ? normalizeCategory(l) : "";
    if (!categories.some((c) => normalizeCategory(c) === n)) {
      throw new Error(`label ${JSON.stringify(l)} is not one of the configured categories (${categories.join(", ")})`);
    }
    wanted.add(n);
  }
  const named = categories.filter((c) => wanted.has(normalizeCategory(c)));
  return named.length === 0 ? SAFE_WORD : named.join(", ");
}

/**
 * The canonical completion for SFT: `<answer>` + answerContent + `</answer>`.
 *
 *   targetAnswer([], ["nudity", "weapons"])          === "<answer>safe</answer>"
 *   targetAnswer(["weapons"], ["nudity", "weapons"]) === "<answer>weapons</answer>"
 */
export function targetAnswer(labels: readonly string[], categories: readonly string[]): string {
  return `<answer>${answerContent(labels, categories)}</answer>`;
}
