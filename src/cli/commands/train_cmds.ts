// `vlm-grpo sft` and `vlm-grpo grpo`: a YAML config (--config) with dotted
// overrides (--grpo.beta 0.04); --resume auto|DIR continues a run,
// --overwrite starts one again in a used output folder.
import path from "node:path";
import { commandSchema } from "../../config/command_keys.js";
import { describeSchema, loadConfig } from "../../config/load.js";
import { type RunConfig, runConfigSchema } from "../../config/run_config.js";
import { runGrpo } from "../../train/grpo.js";
import { runSft } from "../../train/sft.js";
import { TrainingStalledError } from "../../train/stall.js";
import { flag, has, parseArgs, UsageError } from "../args.js";
import { runDataParallel } from "../distributed.js";
import { runExitCode } from "../../train/stop.js";

const TRAIN_FLAGS = { config: { value: true }, resume: { value: true }, overwrite: { value: false }, help: { value: false } } as const;

const TRAIN_OPTIONS = `options:
  --config FILE.yaml   a run config (keys below; any of them can also be given as a dotted flag)
  --resume auto|DIR    continue the run in output_dir from its latest checkpoint (auto), or from a
                       checkpoint or run folder; settings that cannot change mid-run are refused by name
  --overwrite          start again in a non-empty output_dir (deletes its contents); without it or
                       --resume, a non-empty output_dir is refused
  -h, --help           this help`;

const EXIT_CODES: Record<string, string> = {
  sft: "exit codes: 0 done (or stopped on request with a checkpoint), 1 error, 2 bad usage or config",
  grpo: `exit codes: 0 done (or stopped on request with a checkpoint), 1 error, 2 bad usage or config,
  ${TrainingStalledError.EXIT_CODE} not learning (grpo.on_stall: stop; see grpo.stall_steps)`,
};

/**
 * The --help of a command that takes a run config: usage, its own flags, and
 * the config keys it reads (type, default, doc).
 */
export function configHelp(command: string, extra = ""): string {
  const schema = command === "sft" || command === "grpo" || command === "eval" ? commandSchema(command) : runConfigSchema;
  const own = command === "sft" || command === "grpo" ? `\n${TRAIN_OPTIONS}\n` : "";
  const resume = command === "sft" || command === "grpo" ? " [--resume auto|DIR | --overwrite]" : "";
  return `usage: vlm-grpo ${command} [--config FILE.yaml]${resume} [--section.key VALUE ...]${extra}
${own}
Every config key can be given on the command line as a dotted flag, e.g.
  --model runs/sft/final --output_dir runs/${command} --data.path my_data/manifest.jsonl
Config keys ${command} reads (type, default, description):
${describeSchema(schema)}${EXIT_CODES[command] ? `\n${EXIT_CODES[command]}\n` : ""}`;
}

/** Loads --config plus overrides into a validated run config; null after printing --help. */
export function runConfigFrom(argv: readonly string[], command: string): { cfg: RunConfig; resume?: string; overwrite: boolean; configDir?: string; configFile?: string } | null {
  const p = parseArgs(argv, TRAIN_FLAGS, { allowOverrides: true });
  if (has(p, "help")) {
    console.log(configHelp(command));
    return null;
  }
  if (p.positionals.length) throw new UsageError(`unexpected argument '${p.positionals[0]}' (options start with --)`);
  const resume = flag(p, "resume");
  if (resume !== undefined && has(p, "overwrite")) throw new UsageError("--resume and --overwrite exclude each other: --resume continues the run in output_dir, --overwrite deletes it");
  const file = flag(p, "config");
  const cfg = loadConfig(runConfigSchema, { file, overrides: p.overrides });
  return { cfg, resume, overwrite: has(p, "overwrite"), configDir: file ? path.dirname(path.resolve(file)) : undefined, configFile: file };
}

export async function sftCommand(argv: readonly string[]): Promise<number> {
  const r = runConfigFrom(argv, "sft");
  if (!r) return 0;
  return runDataParallel("sft", r.cfg, async (dp, cfg) => {
    const res = await runSft(cfg, { resume: r.resume, overwrite: r.overwrite, configFile: r.configFile, dp });
    if (dp.isMain) console.log(res.stoppedEarly ? `sft stopped at step ${res.steps}; checkpoints in ${res.runDir}/checkpoints` : `sft done: ${res.steps} steps; model in ${res.finalModelDir}`);
    // Rank 0 writes the final model (after this returns, behind a barrier): the others' code follows only a signal.
    return dp.isMain || res.interruptedBy ? runExitCode(res, (l) => console.error(`vlm-grpo sft: ${l}`)) : 0;
  });
}

export async function grpoCommand(argv: readonly string[]): Promise<number> {
  const r = runConfigFrom(argv, "grpo");
  if (!r) return 0;
  return runDataParallel("grpo", r.cfg, async (dp, cfg) => {
    const res = await runGrpo(cfg, { resume: r.resume, overwrite: r.overwrite, configDir: r.configDir, configFile: r.configFile, dp });
    if (dp.isMain) {
      if (res.stoppedEarly) console.log(`grpo stopped at step ${res.steps}; checkpoints in ${res.runDir}/checkpoints`);
      else {
        const warn = res.stalls.length ? ` (warning: no learning signal for ${res.stalls.map((s) => `steps ${s.step - s.steps + 1}-${s.step}`).join(", ")}; see the log)` : "";
        console.log(`grpo done: ${res.steps} steps; model in ${res.finalModelDir}${warn}`);
      }
    }
    return dp.isMain || res.interruptedBy ? runExitCode(res, (l) => console.error(`vlm-grpo grpo: ${l}`)) : 0;
  });
}
