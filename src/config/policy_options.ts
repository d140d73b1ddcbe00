// From the run config to the policy layer's options (src/policy/policy.ts):
// the one place where config keys meet the policy's typed options.
import { autoImageCacheBytes } from "../policy/image_cache.js";
import type { PolicyOptions } from "../policy/policy.js";
import type { RunConfig } from "./run_config.js";

export interface PolicyFromConfigOptions {
  /** Model folder (default: cfg.model). */
  modelDir?: string;
  /** "lora" / "full" training as cfg.lora.enabled says, or inference. */
  train: boolean;
  /** Full fine-tuning: keep the vision tower frozen. */
  freezeVision?: boolean;
  /** A PEFT adapter applied on top (inference). */
  adapterDir?: string;
}

/** The policy options a run config describes. */
export function policyOptions(cfg: RunConfig, o: PolicyFromConfigOptions): PolicyOptions {
  const l = cfg.lora;
  return {
    modelDir: o.modelDir ?? cfg.model,
    dtype: cfg.dtype,
    device: cfg.device,
    prompt: { systemPrompt: cfg.prompt.system_prompt, userPrompt: cfg.prompt.user_prompt, categories: cfg.data.categories, allowThink: cfg.prompt.allow_think },
    training: o.train
      ? {
          lora: l.enabled
            ? { rank: l.rank, alpha: l.alpha, dropout: l.dropout, targetModules: l.target_modules, includeVision: l.include_vision, includeConnector: l.include_connector, seed: cfg.seed }
            : null,
          freezeVision: o.freezeVision,
        }
      : undefined,
    adapterDir: o.adapterDir,
    imageCache: imageCacheOptions(cfg),
  };
}

/** image_cache.max_mb ("auto" or MiB) and compact as the encoder's cache options. */
export function imageCacheOptions(cfg: RunConfig): { maxBytes: number; compact: boolean } {
  const m = cfg.image_cache.max_mb;
  return { maxBytes: m === "auto" ? autoImageCacheBytes() : Math.floor(m * 2 ** 20), compact: cfg.image_cache.compact };
}
