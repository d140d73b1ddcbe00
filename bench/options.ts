// Command-line flags, the benchmark models and small statistics shared by
// bench:generate and bench:grpo.
import os from "node:os";

export function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export function argInt(name: string, fallback: number): number {
  const v = argValue(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`bench: --${name} must be a non-negative integer, got '${v}'`);
  return n;
}

/** "WxH" -> [W, H]. */
export function imageSize(s: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(s);
  if (!m) throw new Error(`bench: --image must be WIDTHxHEIGHT (e.g. 512x512), got '${s}'`);
  return [Number(m[1]), Number(m[2])];
}

export type ModelChoice = "smolvlm-256m" | "qwen2.5-vl-3b";

export interface BenchModelChoice {
  arch: string;
  preset: string;
  /** Default image (one per prompt). */
  image: string;
  /** Default LoRA rank of bench:generate (0: none). */
  lora: number;
  /** Default decoder layers / vision blocks (undefined: the preset's). */
  textLayers?: number;
  visionLayers?: number;
  generateRuns: number;
  grpoRuns: number;
}

/**
 * smolvlm-256m: SmolVLM-256M's shapes, one 512 px tile (64 image tokens).
 * qwen2.5-vl-3b: Qwen2.5-VL-3B's layer widths with 4 of 36 decoder layers and
 * 4 of 32 vision blocks (the full model is ~15 GB per side in fp32 and a GRPO
 * step of it takes minutes on 2 cores); one 448x448 image (256 image tokens).
 */
export const MODELS: Record<ModelChoice, BenchModelChoice> = {
  "smolvlm-256m": { arch: "idefics3", preset: "smolvlm-256m", image: "512x512", lora: 0, generateRuns: 3, grpoRuns: 3 },
  "qwen2.5-vl-3b": { arch: "qwen2_5_vl", preset: "qwen2.5-vl-3b", image: "448x448", lora: 16, textLayers: 4, visionLayers: 4, generateRuns: 3, grpoRuns: 3 },
};

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** "median X ms (min A, max B)". */
export function spread(xs: readonly number[]): string {
  return `median ${median(xs).toFixed(1)} ms (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
}

export const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");
