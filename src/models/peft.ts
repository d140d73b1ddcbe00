// LoRA adapters in PEFT's on-disk format:
//   adapter_config.json          peft_type LORA, r, lora_alpha, lora_dropout, target_modules, ...
//   adapter_model.safetensors    base_model.model.<module path>.lora_A.weight / .lora_B.weight
// so that Python PEFT (PeftModel.from_pretrained) loads what we save and we
// load what it saves.
import fs from "node:fs";
import path from "node:path";
import { writeFolderAtomic } from "../io/atomic.js";
import { loadSafetensors, saveSafetensors } from "../io/safetensors.js";
import { adapterStateDict, applyLoraAt, loraModules, type ResolvedLoraOptions } from "../nn/lora.js";
import { Linear } from "../nn/linear.js";
import type { Module } from "../nn/module.js";
import { dispose, noGrad } from "../torch/index.js";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
const PEFT_PREFIX = "base_model.model.";

/**
 * A regex (PEFT fullmatches it against module names) that selects exactly the
 * adapted modules: layer indices are generalized to \d+, so it also reads well.
 */
export function targetModulesRegex(paths: readonly string[]): string {
  const escaped = new Set(paths.map((p) => p.replace(/\./g, "\\.").replace(/\\\.\d+\\\./g, "\\.\\d+\\.")));
  return [...escaped].sort().join("|");
}

export interface SaveAdapterOptions {
  /** Recorded as base_model_name_or_path. */
  baseModel?: string;
}

/** Writes the model's adapters as a PEFT folder (atomically). */
export function saveAdapter(model: Module, outDir: string, opts: SaveAdapterOptions = {}): void {
  const mods = loraModules(model);
  if (mods.length === 0) throw new Error("saveAdapter: the model has no LoRA adapters");
  const first = mods[0][1];
  if (mods.some(([, m]) => m.merged)) throw new Error("saveAdapter: unmerge the adapters before saving them");
  const ranks = new Set(mods.map(([, m]) => m.rank));
  if (ranks.size !== 1) throw new Error(`saveAdapter: adapters of different ranks (${[...ranks].join(", ")}) are not supported`);
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: opts.baseModel ?? null,
    revision: null,
    inference_mode: true,
    r: first.rank,
    lora_alpha: first.scaling * first.rank,
    lora_dropout: first.dropoutP,
    target_modules: targetModulesRegex(mods.map(([p]) => p)),
    bias: "none",
    fan_in_fan_out: false,
    init_lora_weights: true,
    use_rslora: false,
    use_dora: false,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
  };
  const tensors = new Map<string, import("../torch/index.js").Tensor>();
  for (const [k, t] of adapterStateDict(model)) tensors.set(PEFT_PREFIX + k, t);
  writeFolderAtomic(outDir, (dir) => {
    fs.writeFileSync(path.join(dir, ADAPTER_CONFIG), JSON.stringify(config, null, 2) + "\n");
    saveSafetensors(path.join(dir, ADAPTER_WEIGHTS), tensors, { format: "pt" });
  });
}

interface PeftConfigJson {
  peft_type?: string;
  r?: number;
  lora_alpha?: number;
  lora_dropout?: number;
  use_rslora?: boolean;
  use_dora?: boolean;
}

/** Reads and checks adapter_config.json. */
export function readAdapterConfig(dir: string): ResolvedLoraOptions & { file: string } {
  const file = path.join(dir, ADAPTER_CONFIG);
  if (!fs.existsSync(file)) throw new Error(`loadAdapter: ${file} not found (a PEFT adapter folder has adapter_config.json and adapter_model.safetensors)`);
  let cfg: PeftConfigJson;
  try {
    cfg = JSON.parse(fs.readFileSync(file, "utf8")) as PeftConfigJson;
  } catch (e) {
    throw new Error(`loadAdapter: ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (cfg.peft_type !== "LORA") throw new Error(`loadAdapter: ${file}: peft_type must be "LORA" (got ${JSON.stringify(cfg.peft_type)})`);
  if (cfg.use_dora) throw new Error(`loadAdapter: ${file}: DoRA adapters are not supported`);
  if (cfg.use_rslora) throw new Error(`loadAdapter: ${file}: rsLoRA scaling is not supported`);
  if (!Number.isInteger(cfg.r) || (cfg.r as number) < 1) throw new Error(`loadAdapter: ${file}: "r" must be a positive integer`);
  return {
    file,
    rank: cfg.r as number,
    alpha: cfg.lora_alpha ?? 8,
    dropout: cfg.lora_dropout ?? 0,
    targetModules: [],
    includeVision: false,
    includeConnector: false,
    scopes: { vision: [], connector: [] },
    seed: 0,
  };
}

/**
 * Adds the adapters of a PEFT folder to `model`: the adapted modules are those
 * named by the weight keys; every key must match a Linear of the model with
 * the right shapes, else one error lists the problems.
 */
export function loadAdapter(model: Module, dir: string): { paths: string[] } {
  const o = readAdapterConfig(dir);
  const file = path.join(dir, ADAPTER_WEIGHTS);
  if (!fs.existsSync(file)) throw new Error(`loadAdapter: ${file} not found`);
  if (loraModules(model).length) throw new Error("loadAdapter: the model already has LoRA adapters");
  const tensors = loadSafetensors(file);
  try {
    const byModule = new Map<string, { A?: string; B?: string }>();
    const bad: string[] = [];
    for (const k of tensors.keys()) {
      const m = /^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[A-Za-z0-9_]+)?\.weight$/.exec(k);
      if (!m) {
        bad.push(`'${k}' is not a LoRA weight key (expected base_model.model.<module>.lora_A.weight)`);
        continue;
      }
      const e = byModule.get(m[1]) ?? {};
      e[m[2] as "A" | "B"] = k;
      byModule.set(m[1], e);
    }
    for (const [p, e] of byModule) if (!e.A || !e.B) bad.push(`module '${p}' lacks lora_${e.A ? "B" : "A"}`);
    if (bad.length) throw new Error(`loadAdapter: ${file}: ${bad.join("; ")}`);
    const paths = [...byModule.keys()];
    for (const p of paths) {
      let m: Module;
      try {
        m = model.getModule(p);
      } catch {
        bad.push(`'${p}' is not a module of the model`);
        continue;
      }
      if (!(m instanceof Linear)) {
        bad.push(`'${p}' is a ${m.constructor.name}, not a Linear layer`);
        continue;
      }
      const e = byModule.get(p)!;
      const a = tensors.get(e.A!)!;
      const b = tensors.get(e.B!)!;
      const wantA = [o.rank, m.inFeatures];
      const wantB = [m.outFeatures, o.rank];
      if (a.shape.join() !== wantA.join()) bad.push(`'${e.A}': expected [${wantA.join(", ")}], got [${a.shape.join(", ")}]`);
      if (b.shape.join() !== wantB.join()) bad.push(`'${e.B}': expected [${wantB.join(", ")}], got [${b.shape.join(", ")}]`);
    }
    if (bad.length) throw new Error(`loadAdapter: ${file}: ${bad.join("; ")}`);
    applyLoraAt(model, paths, o);
    const mods = new Map(loraModules(model));
    noGrad(() => {
      for (const p of paths) {
        const m = mods.get(p)!;
        const e = byModule.get(p)!;
        m.lora_A.weight.copy_(tensors.get(e.A!)!);
        m.lora_B.weight.copy_(tensors.get(e.B!)!);
      }
    });
    return { paths };
  } finally {
    dispose([...tensors.values()]);
  }
}
