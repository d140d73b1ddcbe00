// Which config keys a user actually set (in the YAML file or with a dotted
// flag), as opposed to keys that took the schema's default. Inference
// commands need the difference: a model folder's card supplies the prompt
// and categories it was trained with, and only what the user set explicitly
// may override them.
import fs from "node:fs";
import type { PromptOptions } from "../data/prompt.js";
import { parseYamlConfig } from "./load.js";
import { parseOverrideArgs } from "./overrides.js";
import type { RunConfig } from "./run_config.js";

/** A predicate over dotted key paths ("prompt.user_prompt"): true when the file or an override sets it (or a parent object of it). */
export type KeyIsSet = (key: string) => boolean;

/** Reads which keys `file` (YAML, optional) and `overrides` (argv-style) set. */
export function explicitKeys(file: string | undefined, overrides: readonly string[]): KeyIsSet {
  const data = file ? parseYamlConfig(fs.readFileSync(file, "utf8"), file).data : {};
  const fromFlags = parseOverrideArgs(overrides).map((o) => o.path.join("."));
  return (key: string) => {
    if (fromFlags.some((k) => k === key || key.startsWith(`${k}.`))) return true;
    let node: unknown = data;
    for (const seg of key.split(".")) {
      if (typeof node !== "object" || node === null || Array.isArray(node) || !(seg in node)) return false;
      node = (node as Record<string, unknown>)[seg];
      if (node === null || node === undefined) return false;
    }
    return true;
  };
}

/** The prompt fields of a resolved config that the user set explicitly (the rest are left to the model's card). */
export function explicitPrompt(cfg: RunConfig, isSet: KeyIsSet): PromptOptions {
  const out: PromptOptions = {};
  if (isSet("prompt.system_prompt")) out.systemPrompt = cfg.prompt.system_prompt;
  if (isSet("prompt.user_prompt")) out.userPrompt = cfg.prompt.user_prompt;
  if (isSet("prompt.allow_think")) out.allowThink = cfg.prompt.allow_think;
  if (isSet("data.categories")) out.categories = [...cfg.data.categories];
  return out;
}
