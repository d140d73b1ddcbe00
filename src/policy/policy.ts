// The policy: a vision-language model of any registered family with its
// tokenizer, prompt and prompt encoder, prepared for training (LoRA adapters
// or full fine-tuning with an optionally frozen vision tower) or for
// inference (optionally with a PEFT adapter on top). Trainers, evaluation and
// serving all start here; nothing below knows which family it is.
import fs from "node:fs";
import path from "node:path";
import { type PromptConfig, type PromptOptions, resolvePromptConfig } from "../data/prompt.js";
import { HFTokenizer } from "../io/tokenizer.js";
import { loadPretrained } from "../models/load.js";
import { loadAdapter } from "../models/peft.js";
import { familyOf, type ModelFamily } from "../models/registry.js";
import { isVisionLanguageModel, type VisionLanguageModel } from "../models/vlm.js";
import { applyLora, type LoraOptions } from "../nn/lora.js";
import type { Device, Tensor } from "../torch/index.js";
import { type PromptCacheOptions, PromptEncoder } from "./encoder.js";

export interface PolicyTraining {
  /** Train LoRA adapters with these options (targets default to the family's); null: full fine-tuning. */
  lora: LoraOptions | null;
  /** Full fine-tuning: keep the vision tower frozen. */
  freezeVision?: boolean;
}

export interface PolicyOptions {
  /** HF model folder (config.json, safetensors, tokenizer, processor files). */
  modelDir: string;
  /** Parameter / compute dtype. Default float32. */
  dtype?: "float32" | "bfloat16";
  /** Default "cpu". */
  device?: string;
  /** The moderation prompt (categories, system and user text). */
  prompt: PromptOptions;
  /** Prepare for training; absent: inference (no gradients, eval mode). */
  training?: PolicyTraining;
  /** A PEFT adapter folder applied on top (inference). */
  adapterDir?: string;
  /** The prompt encoder's image cache (PromptEncoderOptions.cache). Default: on, autoImageCacheBytes(). */
  imageCache?: boolean | PromptCacheOptions;
}

export interface Policy {
  model: VisionLanguageModel;
  family: ModelFamily;
  tokenizer: HFTokenizer;
  encoder: PromptEncoder;
  prompt: PromptConfig;
  modelDir: string;
  /** LoRA adapters are trained (else full fine-tuning or inference). */
  lora: boolean;
  /** The parameters the optimizer updates (empty for inference). */
  trainable: Tensor[];
  padTokenId: number;
  dispose(): void;
}

/** Loads a model folder and prepares it for training or inference. */
export async function loadPolicy(opts: PolicyOptions): Promise<Policy> {
  const modelDir = opts.modelDir;
  if (!modelDir) throw new Error("no model folder given (config key `model` or --model)");
  if (!fs.existsSync(path.join(modelDir, "config.json"))) throw new Error(`model folder ${modelDir} has no config.json`);
  const { model: loaded } = await loadPretrained(modelDir, { dtype: opts.dtype ?? "float32", device: (opts.device ?? "cpu") as Device });
  const family = familyOf(loaded.config);
  if (!family.vision || !isVisionLanguageModel(loaded) || !family.loadImageProcessor) {
    loaded.dispose();
    throw new Error(`${modelDir}: vlm-grpo trains vision-language models; this folder holds a text-only ${family.name} model`);
  }
  const model = loaded;
  let encoder: PromptEncoder | null = null;
  try {
    const tokenizer = await HFTokenizer.fromDir(modelDir);
    const images = await family.loadImageProcessor(modelDir, tokenizer, model.config);
    const prompt = resolvePromptConfig(opts.prompt);
    encoder = new PromptEncoder({ tokenizer, images, prompt, cache: opts.imageCache });
    const t = opts.training;
    if (opts.adapterDir) {
      if (t) throw new Error("loadPolicy: an adapter on top is for inference; to continue training an adapter, resume its run");
      loadAdapter(model, opts.adapterDir);
    }
    if (t?.lora) {
      applyLora(model, t.lora);
    } else if (t) {
      model.requiresGrad_(true);
      if (t.freezeVision) for (const p of model.moduleScopes.vision) model.getModule(p).requiresGrad_(false);
    } else {
      model.requiresGrad_(false);
    }
    model.train(!!t);
    const padTokenId = tokenizer.padTokenId ?? tokenizer.eosTokenId;
    if (padTokenId === undefined) throw new Error(`${modelDir}: the tokenizer has neither a pad nor an EOS token`);
    const enc = encoder;
    return {
      model,
      family,
      tokenizer,
      encoder: enc,
      prompt,
      modelDir,
      lora: !!t?.lora,
      trainable: t ? model.parameters().filter((p) => p.requiresGrad) : [],
      padTokenId,
      dispose() {
        enc.dispose();
        model.dispose();
      },
    };
  } catch (e) {
    encoder?.dispose();
    model.dispose();
    throw e;
  }
}
