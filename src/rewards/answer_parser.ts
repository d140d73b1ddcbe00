// The one parser of model answers (the inverse of src/data/prompt.ts).
//
// Grammar, after trailing end tokens are removed (rule 1):
//
//   completion := ws [ "<think>" thought "</think>" ws ] "<answer>" content "</answer>" ws
//   content    := item ( "," item )*
//   item       := ws ( "safe" | category ) ws
//
// Rules, each producing a { kind: "unparseable", reason } when broken:
//  1. Trailing text: after `</answer>` only whitespace and known end tokens
//     (END_TOKENS, e.g. <end_of_utterance>, <|im_end|>, </s>; exact spelling,
//     any number, any order) may follow. Anything else after it is an error.
//  2. Tags are matched case-insensitively (<ANSWER> = <answer>) but must be
//     spelled exactly, without inner spaces (`< answer >` is text).
//  3. Exactly one <answer> and one </answer>, in that order. None, two, or an
//     unclosed one (a truncated generation) is an error.
//  4. Before <answer>: only whitespace, or at most one complete think block
//     surrounded by whitespace. Any other text (a preamble, a stray
//     </think>, an unclosed <think>, a second think block) is an error. A
//     think block may hold any text except the four tags. With
//     `allowThink: false` a think block is an error too.
//  5. Content: whitespace is free (runs collapse, ends trimmed) and case is
//     ignored. An empty answer, an empty item (",," or a trailing comma) or
//     any markup (< or >) is an error.
//  6. Items are "safe" or configured categories (compared by
//     normalizeCategory: case and whitespace insensitive; no plural or
//     synonym matching). An unknown item is an error.
//  7. "safe" together with a category is a hedge, and an error.
//  8. Repeated items collapse; categories come back in configured order and
//     spelling, so that equal answers compare equal.
import { normalizeCategory, SAFE_WORD, validateCategories } from "../data/prompt.js";

/** What a completion says. */
export type ParsedAnswer =
  | { kind: "safe"; hasThink: boolean }
  | { kind: "offensive"; categories: string[]; hasThink: boolean }
  | { kind: "unparseable"; reason: string };

/** End-of-turn and end-of-text tokens that may trail an answer when decoding keeps special tokens. */
export const END_TOKENS: readonly string[] = Object.freeze([
  "<end_of_utterance>", // Idefics3 / SmolVLM
  "<|im_end|>", // ChatML (Qwen2-VL, SmolLM)
  "<|endoftext|>",
  "<|eot_id|>", // Llama 3
  "<|end_of_text|>",
  "<|end|>",
  "</s>",
  "<eos>",
]);

export interface ParseOptions {
  /** Accept a `<think>...</think>` block before the answer. Default true. */
  allowThink?: boolean;
  /** Tokens allowed after `</answer>` (besides whitespace). Default END_TOKENS. */
  endTokens?: readonly string[];
}

const countOf = (s: string, re: RegExp): number => (s.match(re) ?? []).length;
const ANSWER_OPEN = /<answer>/gi;
const ANSWER_CLOSE = /<\/answer>/gi;
const THINK_OPEN = /<think>/gi;
const THINK_CLOSE = /<\/think>/gi;

/** A short, single-line quote of text for reasons. */
function quote(s: string, max = 40): string {
  const one = s.replace(/\s+/g, " ").trim();
  return JSON.stringify(one.length > max ? `${one.slice(0, max)}...` : one);
}

const bad = (reason: string): ParsedAnswer => ({ kind: "unparseable", reason });

/** Removes trailing whitespace and end tokens, repeatedly. */
function stripEnd(text: string, endTokens: readonly string[]): string {
  let s = text.trimEnd();
  for (;;) {
    const tok = endTokens.find((t) => t !== "" && s.endsWith(t));
    if (tok === undefined) return s;
    s = s.slice(0, s.length - tok.length).trimEnd();
  }
}

/**
 * Parses the text before `<answer>` (rule 4). Returns whether it held a
 * think block, or an unparseable result.
 */
function parsePreamble(before: string, allowThink: boolean): { hasThink: boolean } | ParsedAnswer {
  if (before.trim() === "") return { hasThink: false };
  const opens = countOf(before, THINK_OPEN);
  const closes = countOf(before, THINK_CLOSE);
  if (opens === 0 && closes === 0) return bad(`text before <answer>: ${quote(before)}`);
  if (opens > 1 || closes > 1) return bad("more than one think block");
  if (opens === 1 && closes === 0) return bad("unclosed <think> before <answer>");
  if (opens === 0) return bad("</think> without <think>");
  const m = /^\s*<think>[\s\S]*<\/think>(\s*)$/i.exec(before);
  if (!m) {
    const open = before.search(THINK_OPEN);
    const close = before.search(THINK_CLOSE);
    if (close < open) return bad("</think> before <think>");
    return open > 0 && before.slice(0, open).trim() !== ""
      ? bad(`text before <think>: ${quote(before.slice(0, open))}`)
      : bad(`text between </think> and <answer>: ${quote(before.slice(close + "</think>".length))}`);
  }
  if (!allowThink) return bad("think block not allowed");
  return { hasThink: true };
}

/**
 * Makes a parser for a fixed category list (validated once; throws on a bad
 * list). See the rules at the top of this file.
 */
export function makeAnswerParser(categories: readonly string[], opts: ParseOptions = {}): (text: string) => ParsedAnswer {
  validateCategories(categories);
  const byName = new Map(categories.map((c) => [normalizeCategory(c), c] as const));
  const order = new Map(categories.map((c, i) => [c, i] as const));
  const allowThink = opts.allowThink ?? true;
  const endTokens = opts.endTokens ?? END_TOKENS;

  return (text: string): ParsedAnswer => {
    if (typeof text !== "string") return bad(`expected a string completion, got ${text === null ? "null" : typeof text}`);
    const s = stripEnd(text, endTokens);
    const opens = countOf(s, ANSWER_OPEN);
    const closes = countOf(s, ANSWER_CLOSE);
    if (opens === 0 && closes === 0) return bad("no <answer> block");
    if (opens > 1 || closes > 1) return bad("more than one <answer> block");
    if (closes === 0) return bad("unclosed <answer> (truncated generation?)");
    if (opens === 0) return bad("</answer> without <answer>");
    const openAt = s.search(ANSWER_OPEN);
    const closeAt = s.search(ANSWER_CLOSE);
    if (closeAt < openAt) return bad("</answer> before <answer>");

    const after = s.slice(closeAt + "</answer>".length);
    if (after.trim() !== "") return bad(`text after </answer>: ${quote(after)}`);

    const pre = parsePreamble(s.slice(0, openAt), allowThink);
    if ("kind" in pre) return pre;

    const content = s.slice(openAt + "<answer>".length, closeAt).replace(/\s+/g, " ").trim();
    if (content === "") return bad("empty answer");
    if (/[<>]/.test(content)) return bad(`markup inside <answer>: ${quote(content)}`);
    let safe = false;
    const named = new Set<string>();
    for (const raw of content.split(",")) {
      const item = normalizeCategory(raw);
      if (item === "") return bad(`empty item in answer ${quote(content)}`);
      if (item === SAFE_WORD) {
        safe = true;
        continue;
      }
      const cat = byName.get(item);
      if (cat === undefined) return bad(`unknown category ${quote(raw)} (expected "${SAFE_WORD}" or one of: ${categories.join(", ")})`);
      named.add(cat);
    }
    if (safe && named.size > 0) return bad(`hedged answer: names "${SAFE_WORD}" together with ${[...named].join(", ")}`);
    if (safe) return { kind: "safe", hasThink: pre.hasThink };
    const list = [...named].sort((a, b) => order.get(a)! - order.get(b)!);
    return { kind: "offensive", categories: list, hasThink: pre.hasThink };
  };
}

/**
 * Parses one completion against a category list (see the rules above).
 *
 *   parseAnswer("<answer>Weapons , NUDITY</answer><end_of_utterance>", ["nudity", "weapons"])
 *     -> { kind: "offensive", categories: ["nudity", "weapons"], hasThink: false }
 *   parseAnswer("<answer>safe, weapons</answer>", ["nudity", "weapons"])
 *     -> { kind: "unparseable", reason: 'hedged answer: names "safe" together with weapons' }
 */
export function parseAnswer(text: string, categories: readonly string[], opts: ParseOptions = {}): ParsedAnswer {
  return makeAnswerParser(categories, opts)(text);
}

/** Whether a parse result predicts an offensive image. */
export const predictsOffensive = (p: ParsedAnswer): boolean => p.kind === "offensive";
