// The reward-function contract shared by built-in and user rewards.
import type { ParsedAnswer } from "./answer_parser.js";

/** What every reward function sees for one batch of completions (index i is one completion). */
export interface RewardContext {
  /** Decoded completions. */
  completions: string[];
  /** Ground-truth categories per completion's image; [] means a safe image. */
  labels: string[][];
  /** parseAnswer(completions[i], categories), computed once for all functions. */
  parsed: ParsedAnswer[];
  /** The configured categories, in answer order. */
  categories: string[];
}

/** One score per completion; null means "not applicable" (see registry.ts for how nulls combine). */
export type RewardScores = (number | null)[];

/**
 * A pure reward: completions and context in, one score (or null) per
 * completion out. `weight` multiplies the scores in the total.
 */
export interface RewardFunction {
  name: string;
  weight: number;
  fn: (ctx: RewardContext) => RewardScores | Promise<RewardScores>;
  /** Frees what the function holds (a user module's worker thread); absent for built-ins. */
  close?: () => void | Promise<void>;
}

/** Throws if an options object holds keys outside `known` (catches typos in configs). */
export function checkOptionKeys(where: string, options: object, known: readonly string[]): void {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new Error(`${where}: options must be an object, got ${JSON.stringify(options)}`);
  }
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) throw new Error(`${where}: unknown option '${k}' (known: ${known.join(", ")})`);
  }
}

/** Reads a finite number option, or the default when absent. */
export function numberOption(where: string, options: Record<string, unknown>, key: string, dflt: number): number {
  const v = options[key];
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`${where}: option '${key}' must be a finite number, got ${JSON.stringify(v)}`);
  return v;
}
