// User reward functions from JavaScript (or TypeScript) modules named in a config:
//
//   rewards:
//     - module: ./rewards/length_penalty.mjs   # relative to the config file
//       export: lengthPenalty                  # default: the default export
//       weight: 0.2
//       options: { maxChars: 200 }
//
// The export must be a function `(ctx: RewardContext, options) => (number | null)[]`
// (or a Promise of that array); `options` is the spec's options object ({} when
// absent). The module runs in a worker thread of its own with a time limit per
// call (isolated_reward.ts), so it sees a copy of the context and must not
// rely on state shared with the trainer. TypeScript modules load only where Node strips types itself
// (Node >= 22.18 or 23.6); elsewhere, compile them to .js first.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { DEFAULT_REWARD_TIMEOUT_S, isolatedUserReward } from "./isolated_reward.js";
import type { RewardContext, RewardFunction, RewardScores } from "./types.js";

/** A user reward's entry in a config. */
export interface UserRewardSpec {
  /** Path of the module, relative to the config file's folder (or absolute). */
  module: string;
  /** Name of the export to use. Default "default". */
  export?: string;
  /** Name in logs and in computeRewards' perFunction. Default: the export's name, or the file's base name for a default export. */
  name?: string;
  /** Weight in the total reward. Default 1. */
  weight?: number;
  /** Passed to the function as its second argument. Default {}. */
  options?: Record<string, unknown>;
}

/** The signature a user module's export must have. */
export type UserRewardFn = (ctx: RewardContext, options: Record<string, unknown>) => RewardScores | Promise<RewardScores>;

const TS_EXT = /\.(ts|mts|cts)$/i;

/** Imports `spec.module` (resolved against `configDir`) and returns its chosen export, checked to be a function. */
export async function loadUserFunction(modulePath: string, exportName: string, configDir: string): Promise<UserRewardFn> {
  if (typeof modulePath !== "string" || modulePath === "") throw new Error(`reward module: 'module' must be a non-empty path, got ${JSON.stringify(modulePath)}`);
  const abs = path.resolve(configDir, modulePath);
  const label = `reward module ${modulePath} (resolved to ${abs})`;
  if (!fs.existsSync(abs)) throw new Error(`${label}: file not found`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (TS_EXT.test(abs) && err?.code === "ERR_UNKNOWN_FILE_EXTENSION") {
      throw new Error(`${label}: this Node (${process.version}) cannot import TypeScript; compile the module to .js or .mjs, or use Node >= 22.18`, { cause: e });
    }
    throw new Error(`${label}: import failed: ${err?.message ?? String(e)}`, { cause: e });
  }
  if (!(exportName in mod)) {
    const names = Object.keys(mod);
    throw new Error(`${label}: has no export '${exportName}' (exports: ${names.length ? names.join(", ") : "none"})`);
  }
  const fn = mod[exportName];
  if (typeof fn !== "function") throw new Error(`${label}: export '${exportName}' is a ${fn === null ? "null" : typeof fn}, expected a function (ctx, options) => scores`);
  return fn as UserRewardFn;
}

export interface LoadUserRewardOptions {
  /** Per-call time limit in seconds. Default DEFAULT_REWARD_TIMEOUT_S (60). */
  timeoutSeconds?: number;
  /** Time limit of loading the module. Default max(timeoutSeconds, 60). */
  loadTimeoutSeconds?: number;
}

/**
 * Loads a user reward described by a config entry, in its own worker thread
 * (isolated_reward.ts): calls that outlive the time limit fail naming the
 * module and the limit. Call the result's close() when done (an idle worker
 * does not keep the process alive, but holds its memory).
 */
export async function loadUserReward(spec: UserRewardSpec, configDir: string, opts: LoadUserRewardOptions = {}): Promise<RewardFunction> {
  const exportName = spec.export ?? "default";
  if (typeof exportName !== "string" || exportName === "") throw new Error(`reward module ${spec.module}: 'export' must be a non-empty string, got ${JSON.stringify(spec.export)}`);
  const options = spec.options ?? {};
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new Error(`reward module ${spec.module}: 'options' must be an object, got ${JSON.stringify(spec.options)}`);
  }
  if (typeof spec.module !== "string" || spec.module === "") throw new Error(`reward module: 'module' must be a non-empty path, got ${JSON.stringify(spec.module)}`);
  const abs = path.resolve(configDir, spec.module);
  if (!fs.existsSync(abs)) throw new Error(`reward module ${spec.module} (resolved to ${abs}): file not found`);
  const name = spec.name ?? (exportName !== "default" ? exportName : path.basename(spec.module).replace(/\.[^.]*$/, ""));
  return isolatedUserReward({
    name,
    weight: spec.weight ?? 1,
    modulePath: spec.module,
    configDir,
    exportName,
    options,
    timeoutSeconds: opts.timeoutSeconds ?? DEFAULT_REWARD_TIMEOUT_S,
    loadTimeoutSeconds: opts.loadTimeoutSeconds,
  });
}
