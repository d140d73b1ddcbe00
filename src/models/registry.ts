// Model families by config.json `model_type`. A family is one folder under
// src/models plus one line in FAMILIES below: its config (two tiers), how to
// build the model, its image processor, its presets and their init. Loading,
// saving, init-model and the whole pipeline above go through this table.
import type { HFTokenizer } from "../io/tokenizer.js";
import type { RawConfig } from "./configs.js";
import { idefics3Family } from "./idefics3/family.js";
import { llamaFamily } from "./llama_family.js";
import { qwen2VlFamily, qwen25VlFamily } from "./qwen2_vl/family.js";
import type { ModelPlacement } from "./llama.js";
import type { VlmImageProcessor } from "./processor.js";
import type { FamilyConfig, PretrainedModel } from "./vlm.js";

/** Token ids that generation_config.json records. */
export interface GenerationTokens {
  bos: number | null;
  eos: number | number[] | null;
  pad: number | null;
}

/** generation_config.json as transformers derives it from a model config's token ids. */
export function generationConfigFromTokens(t: GenerationTokens, transformersVersion: string): RawConfig {
  const out: RawConfig = { _from_model_config: true };
  if (t.bos !== null) out.bos_token_id = t.bos;
  if (t.eos !== null) out.eos_token_id = t.eos;
  if (t.pad !== null) out.pad_token_id = t.pad;
  out.transformers_version = transformersVersion;
  return out;
}

/** Options of a preset's config and files (init-model). */
export interface InitPresetOptions {
  /** Std of the normal init, recorded as initializer_range (default: the preset's). */
  initializerRange?: number;
}

/** Options of a family's random init. */
export interface FamilyInitOptions {
  /** "initializer_range" (HF's _init_weights everywhere) or "siglip" (the vision tower as SigLIP initializes itself). */
  visionInit?: "initializer_range" | "siglip";
}

export interface ModelFamily<C extends FamilyConfig = FamilyConfig> {
  /** The name users pass as --arch (e.g. "idefics3", "qwen2_5_vl"). */
  readonly name: string;
  /** config.json model_type values this family reads. */
  readonly modelTypes: readonly string[];
  /** config.json architectures[0] values (when model_type is absent). */
  readonly architectures: readonly string[];
  /** One line for help texts. */
  readonly description: string;
  /** A vision-language model (vlm-grpo trains these) or a text-only decoder. */
  readonly vision: boolean;
  resolveConfig(raw: RawConfig, where: string): C;
  /** config.json content; `torchDtype` is the saved weights' dtype. */
  configToJson(config: C, opts: { torchDtype?: string }): RawConfig;
  /** generation_config.json content when the source folder has none (see generationConfigFromTokens). */
  generationConfig(config: C): RawConfig;
  /**
   * Checkpoint key layout when it differs from the module paths (e.g.
   * Qwen2-VL's hub keys visual.* / model.* for model.visual.* /
   * model.language_model.*): stored key -> module path (load; may accept
   * several layouts) and module path -> stored key (save).
   */
  checkpointKeys?: { toModulePath(stored: string): string; toStoredKey(modulePath: string): string };
  /** A model with uninitialized parameters (load weights or init next). */
  build(config: C, placement?: ModelPlacement): PretrainedModel;
  /** The image processor of a model folder (vision families only). */
  loadImageProcessor?(dir: string, tokenizer: HFTokenizer, config: C): Promise<VlmImageProcessor>;
  /** Preset names for init-model. */
  readonly presets: readonly string[];
  /** Writes a preset's tokenizer (and processor) files into `dir` and returns its resolved config. */
  initPreset(preset: string, dir: string, opts: InitPresetOptions): Promise<C>;
  /** Fills every parameter of a freshly built model. */
  initWeights(model: PretrainedModel, config: C, seed: number, opts: FamilyInitOptions): void;
}

// biome-ignore lint: families are heterogeneous in their config type
const FAMILIES: readonly ModelFamily<any>[] = [idefics3Family, qwen2VlFamily, qwen25VlFamily, llamaFamily];

/** Every registered family. */
export function modelFamilies(): readonly ModelFamily[] {
  return FAMILIES;
}

/** The family registered under --arch `name`. */
export function familyByName(name: string): ModelFamily {
  const f = FAMILIES.find((x) => x.name === name);
  if (!f) throw new Error(`unknown architecture '${name}'; choose one of: ${FAMILIES.map((x) => x.name).join(", ")}`);
  return f;
}

/** The family of a config.json object: by model_type, else by architectures[0]. */
export function familyOfRaw(raw: RawConfig, where = "config.json"): ModelFamily {
  const mt = raw.model_type;
  const archs = Array.isArray(raw.architectures) ? (raw.architectures as unknown[]) : [];
  const f = typeof mt === "string" ? FAMILIES.find((x) => x.modelTypes.includes(mt)) : FAMILIES.find((x) => archs.some((a) => x.architectures.includes(a as string)));
  if (!f) {
    const known = FAMILIES.map((x) => `${x.modelTypes.join("/")} (${x.architectures.join(", ")})`).join("; ");
    throw new Error(`${where}: unsupported model (model_type ${JSON.stringify(mt)}, architectures ${JSON.stringify(raw.architectures)}); supported: ${known}`);
  }
  return f;
}

/** The family of a resolved config. */
export function familyOf(config: FamilyConfig): ModelFamily {
  const f = FAMILIES.find((x) => x.modelTypes.includes(config.modelType));
  if (!f) throw new Error(`no registered model family for model_type '${config.modelType}'`);
  return f;
}

/** Resolves any supported config.json object. */
export function resolveConfig(raw: RawConfig, where = "config.json"): FamilyConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error(`${where}: expected a JSON object`);
  return familyOfRaw(raw, where).resolveConfig(raw, where);
}

/** config.json content for any supported config. */
export function configToJson(config: FamilyConfig, opts: { torchDtype?: string } = {}): RawConfig {
  return familyOf(config).configToJson(config, opts);
}
