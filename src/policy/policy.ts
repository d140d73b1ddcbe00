// The policy: a vision-language model of any registered family with its
// tokenizer, prompt and prompt encoder, prepared for training (LoRA adapters
// or full fine-tuning with an optionally frozen vision tower) or for
// inference (optionally with a PEFT adapter on top). Trainers, evaluation and
// serving all start here; nothing below knows which family it is.
//
// A folder with a model card (vlm_grpo.json, policy/model_card.ts) is asked
// the question it was trained with: the card's prompt and categories fill
// every prompt field the caller leaves out. A folder without one (a Hugging
// Face checkpoint) gets the built-in defaults for them.
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
import { cardPromptConfig, MODEL_CARD_FILE, type ModelCard, readPolicyCard } from "./model_card.js";

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
  /**
   * The moderation prompt (categories, system and user text). Fields given
   * here win; fields left out come from the folder's model card, else the
   * built-in defaults (src/data/prompt.ts).
   */
  prompt: PromptOptions;
  /** Keep processed images for reuse (training's epochs). Default true; one-pass inference passes false. */
  cacheImages?: boolean;
  /** Refuse images with more pixels than this. Default io/image_decode's DEFAULT_MAX_PIXELS. */
  maxPixels?: number;
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
  /** The model card (the adapter's when an adapter with one is applied, else the folder's), if any. */
  card: ModelCard | null;
  /** Where each prompt field came from: "caller", "card" or "default". */
  promptSource: Record<keyof PromptConfig, "caller" | "card" | "default">;
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
  // An adapter trained by vlm-grpo carries its own card; it describes the adapted model better than the base's.
  const { card, dir: cardDir } = readPolicyCard(modelDir, opts.adapterDir);
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
    const { prompt, source: promptSource } = promptFor(opts.prompt, card, cardDir);
    encoder = new PromptEncoder({ tokenizer, images, prompt, cache: opts.imageCache, maxPixels: opts.maxPixels });
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
      card,
      promptSource,
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

const PROMPT_FIELDS = ["systemPrompt", "userPrompt", "categories", "allowThink"] as const;

/** The prompt a policy uses: the caller's fields, then the card's, then the defaults; and where each came from. */
export function promptFor(given: PromptOptions, card: ModelCard | null, modelDir = ""): { prompt: PromptConfig; source: Policy["promptSource"] } {
  const fromCard = card ? cardPromptConfig(card) : null;
  const merged: PromptOptions = {};
  const source = {} as Policy["promptSource"];
  for (const k of PROMPT_FIELDS) {
    if (given[k] !== undefined) {
      (merged as Record<string, unknown>)[k] = given[k];
      source[k] = "caller";
    } else if (fromCard) {
      (merged as Record<string, unknown>)[k] = fromCard[k];
      source[k] = "card";
    } else source[k] = "default";
  }
  try {
    return { prompt: resolvePromptConfig(merged), source };
  } catch (e) {
    throw new Error(`${card ? `${path.join(modelDir, MODEL_CARD_FILE)} with the caller's prompt` : "prompt"}: ${(e as Error).message}`);
  }
}
