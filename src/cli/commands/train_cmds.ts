// `vlm-grpo sft` and `vlm-grpo grpo`: a YAML config (--config) with dotted
// overrides (--grpo.beta 0.04), resumable with --resume auto|DIR.
import path from "node:path";
import { describeSchema, loadConfig } from "../../config/load.js";
import { type RunConfig, runConfigSchema } from "../../config/run_config.js";
import { runGrpo } from "../../train/grpo.js";
import { runSft } from "../../train/sft.js";
import { runExitCode } from "../../train/stop.js";
import { flag, has, parseArgs } from "../args.js";

const TRAIN_FLAGS = { config: { value: true }, resume: { value: true }, help: { value: false } } as const;

export function configHelp(command: string, extra = ""): string {
  return `usage: vlm-grpo ${command} [--config FILE.yaml] [--resume auto|DIR] [--section.key VALUE ...]${extra}

Every config key can be given on the command line as a dotted flag, e.g.
  --model runs/sft/final --output_dir runs/grpo --grpo.beta 0.04 --lora.rank 16
Config keys (type, default, description):
${describeSchema(runConfigSchema)}`;
}

/** Loads --config plus overrides into a validated run config. */
export function runConfigFrom(argv: readonly string[], command: string): { cfg: RunConfig; resume?: string; configDir?: string; help: boolean } | null {
  const p = parseArgs(argv, TRAIN_FLAGS, { allowOverrides: true });
  if (has(p, "help")) {
    console.log(configHelp(command));
    return null;
  }
  if (p.positionals.length) throw new Error(`vlm-grpo ${command}: unexpected argument '${p.positionals[0]}' (options start with --)`);
  const file = flag(p, "config");
  const cfg = loadConfig(runConfigSchema, { file, overrides: p.overrides });
  return { cfg, resume: flag(p, "resume"), configDir: file ? path.dirname(path.resolve(file)) : undefined, help: false };
}

export async function sftCommand(argv: readonly string[]): Promise<number> {
  const r = runConfigFrom(argv, "sft");
  if (!r) return 0;
  const res = await runSft(r.cfg, { resume: r.resume });
  console.log(res.stoppedEarly ? `sft stopped at step ${res.steps}; checkpoints in ${res.runDir}/checkpoints` : `sft done: ${res.steps} steps; model in ${res.finalModelDir}`);
  return runExitCode(res, (l) => console.error(`vlm-grpo sft: ${l}`));
}

export async function grpoCommand(argv: readonly string[]): Promise<number> {
  const r = runConfigFrom(argv, "grpo");
  if (!r) return 0;
  const res = await runGrpo(r.cfg, { resume: r.resume, configDir: r.configDir });
  console.log(res.stoppedEarly ? `grpo stopped at step ${res.steps}; checkpoints in ${res.runDir}/checkpoints` : `grpo done: ${res.steps} steps; model in ${res.finalModelDir}`);
  return runExitCode(res, (l) => console.error(`vlm-grpo grpo: ${l}`));
}
