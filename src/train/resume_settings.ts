// Resuming with changed settings. A checkpoint saves the resolved config it
// was trained with; a resume compares it with the new one, key by key, and
// each changed key is either applied from the resumed step on (and the new
// value recorded in the saved config, with a log line) or refused by name.
// Nothing is recorded that did not run: the optimizer and schedule settings
// a checkpoint restores (lr, weight decay, schedule, warmup, total steps)
// are set again from the new config after the restore.
//
// The table (README "Resuming a run" mirrors it; a test checks that every
// config key falls under a rule):
//   refused: model, seed, dtype, data.*, prompt.*, lora.* (except dropout),
//            sft.freeze_vision (sft), grpo.freeze_vision, grpo.num_generations,
//            grpo.stratify (grpo)
//   applied: everything else: device, threads, output_dir, lora.dropout, the
//            run length (sft.epochs/max_steps, grpo.steps), lr, weight_decay,
//            schedule, warmup_ratio, max_grad_norm, batch sizes, the GRPO
//            objective and sampling (beta, epsilon*, loss_type, scale_rewards,
//            temperature, top_p/top_k, max_completion_length, rewards, ...),
//            logging, saving and evaluation cadence, eval.*, distributed.*,
//            image_cache.*, stop_timeout_s
//            (the world size itself is checked on its own); sections a
//            command does not use (sft.* for grpo, grpo.* and eval.* for sft, demo.*, serve.*).
import fs from "node:fs";
import path from "node:path";
import { parseYamlConfig } from "../config/load.js";
import { type RunConfig, runConfigSchema } from "../config/run_config.js";
import { schemaAt, validate } from "../config/schema.js";
import type { AdamW, LRScheduler } from "../torch/optim/index.js";

export type TrainerKind = "sft" | "grpo";

export interface ResumeRule {
  action: "apply" | "refuse";
  /** Why, as the user will read it. */
  why: string;
}

const refuse = (why: string): ResumeRule => ({ action: "refuse", why });
const apply = (why: string): ResumeRule => ({ action: "apply", why });

/** Rules by dotted key or key prefix (the longest match wins), per trainer. */
const RULES: Record<string, ResumeRule> = {
  model: refuse("the checkpoint's weights were trained from the old base model"),
  output_dir: apply("only where the run writes"),
  seed: refuse("the data order and LoRA init follow the seed, while the checkpoint restores the old random state: a new seed would only partly apply"),
  device: apply("weights and optimizer state are loaded onto the new device"),
  dtype: refuse("the optimizer state was saved in the old dtype"),
  threads: apply("a speed setting"),
  data: refuse("the train split and the data position saved in the checkpoint refer to the old data"),
  prompt: refuse("the model learned to answer the old prompt, and the final model records one prompt"),
  lora: refuse("the adapters' shape, targets and scaling come from these keys"),
  "lora.dropout": apply("dropout acts in training forward passes only"),
  sft: apply("read at every step"),
  "sft.freeze_vision": refuse("it changes the trainable parameters, whose optimizer state the checkpoint holds"),
  grpo: apply("read at every step"),
  "grpo.freeze_vision": refuse("it changes the trainable parameters, whose optimizer state the checkpoint holds"),
  "grpo.num_generations": refuse("the group size defines the advantages' baseline: a run would mix two objectives"),
  "grpo.stratify": refuse("the prompt sampler's saved position has another layout"),
  eval: apply("read at every held-out evaluation"),
  demo: apply("not used by sft or grpo"),
  serve: apply("not used by sft or grpo"),
  stop_timeout_s: apply("how long a stop request waits for the step and its checkpoint"),
  image_cache: apply("memory only: a cached image is the same image (compact storage is exact)"),
  distributed: apply("how the processes talk (backend, timeout, bucket size, weight checks); a changed world size is refused separately, by the checkpoint's distributed.json"),
};

/** Sections a trainer does not read: any change there is applied (it changes nothing). */
const UNUSED: Record<TrainerKind, string[]> = { sft: ["grpo", "eval", "demo", "serve"], grpo: ["sft", "demo", "serve"] };

/** The rule for a dotted key in a trainer. */
export function resumeRule(key: string, kind: TrainerKind): ResumeRule {
  const section = key.split(".")[0];
  if (UNUSED[kind].includes(section)) return apply(`not used by ${kind}`);
  const parts = key.split(".");
  for (let n = parts.length; n > 0; n--) {
    const r = RULES[parts.slice(0, n).join(".")];
    if (r) return r;
  }
  return refuse("no rule says this key can change mid-run");
}

/** Leaf values of a config by dotted key; lists are leaves (compared whole). */
export function flattenConfig(v: unknown, prefix = "", out: Map<string, unknown> = new Map()): Map<string, unknown> {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) flattenConfig(x, prefix ? `${prefix}.${k}` : k, out);
  } else if (v !== undefined) out.set(prefix, v);
  return out;
}

/** Keys whose values are paths: compared as resolved paths (a relative and an absolute spelling agree). */
const PATH_KEYS = new Set(["model", "data.path", "output_dir"]);

const same = (key: string, a: unknown, b: unknown): boolean => {
  if (PATH_KEYS.has(key) && typeof a === "string" && typeof b === "string") return a === b || (a !== "" && b !== "" && path.resolve(a) === path.resolve(b));
  return JSON.stringify(a) === JSON.stringify(b);
};

export interface SettingChange {
  key: string;
  from: unknown;
  to: unknown;
  rule: ResumeRule;
}

/** Raised when a resume changes a key that cannot change mid-run; names every such key. */
export class ResumeSettingsError extends Error {}

/** The resolved config saved in a checkpoint (keys added to the schema since take their defaults). */
export function readCheckpointConfig(checkpointDir: string): Record<string, unknown> {
  const file = path.join(checkpointDir, "config.yaml");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`resume: cannot read ${file} (the config the checkpoint was trained with): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const raw = parseYamlConfig(text, file).data;
  try {
    return validate(runConfigSchema, raw, { file }) as unknown as Record<string, unknown>;
  } catch {
    return raw; // an older schema: compare the keys it has
  }
}

/**
 * Compares the checkpoint's config with this run's. Returns the changed keys
 * that apply; throws ResumeSettingsError naming every refused one (old and
 * new value, and why).
 */
export function checkResumeSettings(saved: Record<string, unknown>, cfg: RunConfig, kind: TrainerKind, checkpointDir: string): SettingChange[] {
  const before = flattenConfig(saved);
  const after = flattenConfig(cfg);
  // Keys the schema no longer has (a checkpoint from an older version) are left out.
  const keys = [...new Set([...after.keys(), ...before.keys()])].filter((k) => schemaAt(runConfigSchema, k.split(".")) !== undefined);
  const changes: SettingChange[] = [];
  for (const key of keys.sort()) {
    const from = before.get(key);
    const to = after.get(key);
    if (same(key, from, to)) continue;
    changes.push({ key, from, to, rule: resumeRule(key, kind) });
  }
  const refused = changes.filter((c) => c.rule.action === "refuse");
  if (refused.length) {
    throw new ResumeSettingsError(
      `resume: the checkpoint ${checkpointDir} was trained with other values of settings that cannot change mid-run:\n` +
        refused.map((c) => `  ${c.key}: ${show(c.from)} in the checkpoint, ${show(c.to)} now (${c.rule.why})`).join("\n") +
        `\nResume with the checkpoint's values (see ${path.join(checkpointDir, "config.yaml")}), or start a new run (--overwrite, or another --output_dir).`,
    );
  }
  return changes;
}

export const show = (v: unknown): string => (v === undefined ? "(unset)" : typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v));

/** One line per applied change, for the log and the saved config's header. */
export function describeChanges(changes: SettingChange[], step: number): string[] {
  return changes.map((c) => `${c.key}: ${show(c.from)} -> ${show(c.to)} from step ${step + 1}`);
}

/** The schedule a run config describes (as session.makeScheduler builds it). */
export function scheduleOptions(kind: "constant" | "constant_with_warmup" | "linear" | "cosine", totalSteps: number, warmupRatio: number) {
  const warmupSteps = Math.round(totalSteps * warmupRatio);
  return { kind: kind === "constant" && warmupSteps > 0 ? ("constant_with_warmup" as const) : kind, warmupSteps, totalSteps };
}

/**
 * After a checkpoint restore (which brings back the old learning rate, weight
 * decay and schedule): sets them from this run's config, keeping the step
 * count, so the lr of the next step follows the new settings. With unchanged
 * settings the values are the restored ones exactly.
 */
export function reapplyOptimizerSettings(optimizer: AdamW, scheduler: LRScheduler, s: { lr: number; weightDecay: number; schedule: "constant" | "constant_with_warmup" | "linear" | "cosine"; warmupRatio: number; totalSteps: number }): void {
  for (const g of optimizer.paramGroups) g.weightDecay = s.weightDecay;
  const st = scheduler.stateDict();
  const o = scheduleOptions(s.schedule, s.totalSteps, s.warmupRatio);
  scheduler.loadStateDict({ ...st, kind: o.kind, warmupSteps: o.warmupSteps, totalSteps: o.totalSteps, baseLrs: st.baseLrs.map(() => s.lr) });
}
