// Is a checkpoint folder intact enough to resume from? Checks what can be
// checked without loading tensors: every file a save writes is there,
// trainer_state.json parses and names this step, each safetensors header
// parses and its tensors tile the file exactly (so a truncated file is
// caught), and the weights hold at least one tensor (an empty adapter is
// not a checkpoint). Returns the first problem found, or null.
//
// What a save writes (session.ts saveTrainingCheckpoint):
//   trainer_state.json, config.yaml, optimizer.safetensors, rng.safetensors,
//   and adapter/{adapter_model.safetensors, adapter_config.json} (LoRA) or
//   model.safetensors (full fine-tuning).
import fs from "node:fs";
import path from "node:path";
import { readSafetensorsHeader } from "../io/safetensors.js";

function safetensorsProblem(file: string, needTensors: boolean): string | null {
  if (!fs.existsSync(file)) return `${path.basename(file)} is missing`;
  try {
    const h = readSafetensorsHeader(file);
    if (needTensors && h.entries.size === 0) return `${path.basename(file)} holds no tensors`;
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** The first reason `dir` (checkpoint of `step`) cannot be resumed from, or null when it looks intact. */
export function checkCheckpoint(dir: string, step: number): string | null {
  const statePath = path.join(dir, "trainer_state.json");
  let state: Record<string, unknown>;
  try {
    state = JSON.parse(fs.readFileSync(statePath, "utf8")) as Record<string, unknown>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return err.code === "ENOENT" ? "trainer_state.json is missing" : `trainer_state.json cannot be read: ${err.message}`;
  }
  if (state === null || typeof state !== "object" || Array.isArray(state)) return "trainer_state.json does not hold an object";
  if (state.step !== step) return `trainer_state.json says step ${JSON.stringify(state.step)}, the folder's name says ${step}`;
  if (state.kind !== "sft" && state.kind !== "grpo") return `trainer_state.json has kind ${JSON.stringify(state.kind)}, expected "sft" or "grpo"`;
  if (typeof state.lora !== "boolean") return "trainer_state.json lacks 'lora' (true or false)";
  if (!fs.existsSync(path.join(dir, "config.yaml"))) return "config.yaml is missing";
  for (const f of ["optimizer.safetensors", "rng.safetensors"]) {
    const p = safetensorsProblem(path.join(dir, f), f === "rng.safetensors");
    if (p) return p;
  }
  if (state.lora) {
    const cfg = path.join(dir, "adapter", "adapter_config.json");
    try {
      JSON.parse(fs.readFileSync(cfg, "utf8"));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      return err.code === "ENOENT" ? "adapter/adapter_config.json is missing" : `adapter/adapter_config.json cannot be read: ${err.message}`;
    }
    const p = safetensorsProblem(path.join(dir, "adapter", "adapter_model.safetensors"), true);
    if (p) return p.startsWith("adapter_model") ? `adapter/${p}` : p;
  } else {
    const p = safetensorsProblem(path.join(dir, "model.safetensors"), true);
    if (p) return p;
  }
  return null;
}
