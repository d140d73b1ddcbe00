// Reward functions from a config, and their weighted total.
//
// A config lists built-in rewards by name and user rewards by module:
//
//   [{ name: "recall", options: { falsePositive: -0.3 } },
//    { name: "format", weight: 0.1 },
//    { module: "./my_reward.mjs", export: "default", weight: 0.5 }]
//
// computeRewards follows TRL's GRPOTrainer (trl 1.10.0.dev, read 2026-07):
// a null score means "not applicable" and counts as 0 in the weighted sum
// (torch.nansum over functions); a completion for which EVERY function
// returned null is unscorable: its total is NaN, so groupAdvantages leaves it
// out of its group's mean and std and gives it advantage 0.
import { normalizeCategory, SAFE_WORD } from "../data/prompt.js";
import { type CategoryBonusOptions, categoryBonus, CATEGORY_BONUS_WEIGHT } from "./category_bonus.js";
import { makeAnswerParser, type ParseOptions } from "./answer_parser.js";
import { formatReward, FORMAT_REWARD_WEIGHT, type FormatRewardOptions } from "./format_reward.js";
import { type RecallRewardOptions, recallReward } from "./recall_reward.js";
import type { RewardContext, RewardFunction } from "./types.js";
import { RewardWorkerError } from "./isolated_reward.js";
import { loadUserReward, type UserRewardSpec } from "./user_module.js";

/** A built-in reward's entry in a config. */
export interface BuiltinRewardSpec {
  /** One of the keys of BUILTIN_REWARDS: "recall", "format", "category_bonus". */
  name: string;
  /** Weight in the total. Default: the built-in's own (recall 1, format 0.1, category_bonus 0.5). */
  weight?: number;
  /** The built-in's options (RecallRewardOptions, FormatRewardOptions, CategoryBonusOptions). */
  options?: Record<string, unknown>;
}

/** One entry of the `rewards` list of a config. */
export type RewardSpec = BuiltinRewardSpec | UserRewardSpec;

type Factory = (options: Record<string, unknown>, weight?: number) => RewardFunction;

/** The built-in rewards by config name. */
export const BUILTIN_REWARDS: Readonly<Record<string, Factory>> = Object.freeze({
  recall: (o: Record<string, unknown>, w?: number) => recallReward(o as RecallRewardOptions, w ?? 1),
  format: (o: Record<string, unknown>, w?: number) => formatReward(o as FormatRewardOptions, w ?? FORMAT_REWARD_WEIGHT),
  category_bonus: (o: Record<string, unknown>, w?: number) => categoryBonus(o as CategoryBonusOptions, w ?? CATEGORY_BONUS_WEIGHT),
});

/** The rewards used when a config names none: recall (1), format (0.1), category_bonus (0.5). */
export const DEFAULT_REWARD_SPECS: readonly RewardSpec[] = Object.freeze([{ name: "recall" }, { name: "format" }, { name: "category_bonus" }]);

const BUILTIN_KEYS = ["name", "weight", "options"];
const MODULE_KEYS = ["module", "export", "name", "weight", "options"];

export interface BuildRewardsOptions {
  /** Folder that user modules' paths are relative to (the config file's folder). Default process.cwd(). */
  configDir?: string;
  /** Per-call time limit of user modules in seconds (grpo.reward_timeout_s). Default 60. */
  timeoutSeconds?: number;
  /** Time limit of loading each user module. Default max(timeoutSeconds, 60). */
  loadTimeoutSeconds?: number;
}

/**
 * Builds the reward functions of a config, in order. Errors name the entry
 * (`rewards[i]`) and what is wrong: unknown name, unknown key, bad weight or
 * option, duplicate name, or a module that fails to load.
 */
export async function buildRewardFunctions(specs: readonly RewardSpec[] = DEFAULT_REWARD_SPECS, opts: BuildRewardsOptions = {}): Promise<RewardFunction[]> {
  if (!Array.isArray(specs) || specs.length === 0) throw new Error(`rewards: expected a non-empty list of reward entries, got ${JSON.stringify(specs)}`);
  const configDir = opts.configDir ?? process.cwd();
  const out: RewardFunction[] = [];
  try {
    await buildInto(out, specs, configDir, opts);
  } catch (e) {
    await closeRewardFunctions(out);
    throw e;
  }
  return out;
}

/** Frees what reward functions hold (user modules' worker threads). */
export async function closeRewardFunctions(fns: readonly RewardFunction[]): Promise<void> {
  await Promise.all(fns.map((f) => f.close?.()));
}

async function buildInto(out: RewardFunction[], specs: readonly RewardSpec[], configDir: string, opts: BuildRewardsOptions): Promise<void> {
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i] as unknown as Record<string, unknown>;
    const where = `rewards[${i}]`;
    if (spec === null || typeof spec !== "object" || Array.isArray(spec)) throw new Error(`${where}: expected an object with 'name' or 'module', got ${JSON.stringify(spec)}`);
    const isModule = "module" in spec;
    const known = isModule ? MODULE_KEYS : BUILTIN_KEYS;
    for (const k of Object.keys(spec)) {
      if (!known.includes(k)) throw new Error(`${where}: unknown key '${k}' (a ${isModule ? "module" : "built-in"} reward takes: ${known.join(", ")})`);
    }
    if (spec.weight !== undefined && (typeof spec.weight !== "number" || !Number.isFinite(spec.weight))) {
      throw new Error(`${where}: 'weight' must be a finite number, got ${JSON.stringify(spec.weight)}`);
    }
    if (spec.name !== undefined && (typeof spec.name !== "string" || spec.name === "")) throw new Error(`${where}: 'name' must be a non-empty string, got ${JSON.stringify(spec.name)}`);
    let rf: RewardFunction;
    try {
      if (isModule) {
        rf = await loadUserReward(spec as unknown as UserRewardSpec, configDir, { timeoutSeconds: opts.timeoutSeconds, loadTimeoutSeconds: opts.loadTimeoutSeconds });
      } else {
        const name = spec.name as string | undefined;
        if (name === undefined) throw new Error(`needs 'name' (one of: ${Object.keys(BUILTIN_REWARDS).join(", ")}) or 'module'`);
        const factory = Object.hasOwn(BUILTIN_REWARDS, name) ? BUILTIN_REWARDS[name] : undefined;
        if (!factory) throw new Error(`unknown reward '${name}' (built-ins: ${Object.keys(BUILTIN_REWARDS).join(", ")}; user rewards take 'module')`);
        rf = factory((spec.options as Record<string, unknown> | undefined) ?? {}, spec.weight as number | undefined);
      }
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`, { cause: e });
    }
    const dup = out.findIndex((r) => r.name === rf.name);
    if (dup >= 0) {
      await rf.close?.();
      throw new Error(`${where}: reward name '${rf.name}' is already used by rewards[${dup}]; give one of them another 'name'`);
    }
    out.push(rf);
  }
}

/**
 * The context for a batch: parses every completion once. Throws if
 * completions and labels differ in length, or a label list is not a list of
 * names or holds "safe" (a safe image's labels are []).
 */
export function makeRewardContext(completions: string[], labels: string[][], categories: string[], parseOptions: ParseOptions = {}): RewardContext {
  if (completions.length !== labels.length) throw new Error(`makeRewardContext: ${completions.length} completions but ${labels.length} label lists`);
  labels.forEach((ls, i) => {
    if (!Array.isArray(ls) || ls.some((l) => typeof l !== "string")) throw new Error(`makeRewardContext: labels[${i}] must be a list of category names, got ${JSON.stringify(ls)}`);
    if (ls.some((l) => normalizeCategory(l) === SAFE_WORD)) throw new Error(`makeRewardContext: labels[${i}] holds "${SAFE_WORD}"; a safe image has no labels ([])`);
  });
  const parse = makeAnswerParser(categories, parseOptions);
  return { completions, labels, parsed: completions.map(parse), categories };
}

/** Rewards of a batch. */
export interface RewardTotals {
  /** Weighted sum over functions per completion (nulls count 0); NaN where every function returned null. */
  total: Float64Array;
  /** Each function's raw (unweighted) scores by name; NaN where it returned null. */
  perFunction: Record<string, Float64Array>;
  /** 1 where every function returned null (TRL's "unscorable" rows), else 0. */
  unscorable: Uint8Array;
}

/** Runs one function and checks its output: an array of the right length of finite numbers or nulls. */
async function runOne(rf: RewardFunction, ctx: RewardContext, n: number): Promise<Float64Array> {
  let scores: unknown;
  try {
    scores = await rf.fn(ctx);
  } catch (e) {
    if (e instanceof RewardWorkerError) throw e; // a time limit or a dead worker: its message names the reward already
    throw new Error(`reward function '${rf.name}' threw: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  if (!Array.isArray(scores)) throw new Error(`reward function '${rf.name}' returned ${scores === null ? "null" : typeof scores}, expected an array of ${n} numbers or nulls`);
  if (scores.length !== n) throw new Error(`reward function '${rf.name}' returned ${scores.length} scores for ${n} completions`);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = scores[i];
    if (s === null) out[i] = NaN;
    else if (typeof s === "number" && Number.isFinite(s)) out[i] = s;
    else throw new Error(`reward function '${rf.name}' returned ${typeof s === "number" ? String(s) : JSON.stringify(s) ?? String(s)} for completion ${i}; expected a finite number or null`);
  }
  return out;
}

/**
 * Calls every reward function (concurrently) and sums their weighted scores.
 * Errors name the function: one that throws, returns a non-array, the wrong
 * length, NaN, an infinity or a non-number. Duplicate names are an error.
 *
 *   computeRewards([recallReward(), formatReward()], ctx) with one TP completion
 *     -> { total: [1.1], perFunction: { recall: [1], format: [1] }, unscorable: [0] }
 */
export async function computeRewards(fns: readonly RewardFunction[], ctx: RewardContext): Promise<RewardTotals> {
  if (fns.length === 0) throw new Error("computeRewards: no reward functions");
  const n = ctx.completions.length;
  if (ctx.labels.length !== n || ctx.parsed.length !== n) {
    throw new Error(`computeRewards: context has ${n} completions, ${ctx.labels.length} label lists and ${ctx.parsed.length} parses; they must match`);
  }
  const names = new Set<string>();
  for (const rf of fns) {
    if (names.has(rf.name)) throw new Error(`computeRewards: two reward functions are named '${rf.name}'`);
    names.add(rf.name);
    if (typeof rf.weight !== "number" || !Number.isFinite(rf.weight)) throw new Error(`reward function '${rf.name}': weight must be a finite number, got ${rf.weight}`);
  }
  const settled = await Promise.allSettled(fns.map((rf) => runOne(rf, ctx, n)));
  const perFunction: Record<string, Float64Array> = {};
  settled.forEach((s, k) => {
    if (s.status === "rejected") throw s.reason;
    perFunction[fns[k].name] = s.value;
  });
  const total = new Float64Array(n);
  const unscorable = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    let any = false;
    for (const rf of fns) {
      const v = perFunction[rf.name][i];
      if (Number.isNaN(v)) continue;
      sum += rf.weight * v;
      any = true;
    }
    total[i] = any ? sum : NaN;
    unscorable[i] = any ? 0 : 1;
  }
  return { total, perFunction, unscorable };
}
