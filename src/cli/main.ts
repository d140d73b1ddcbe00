#!/usr/bin/env node
// The `vlm-grpo` command. Each subcommand lives in its own file.
import { ConfigError } from "../config/schema.js";
import { TrainingStalledError } from "../train/stall.js";
import { errorLine, UsageError } from "./args.js";
import { configCommand } from "./commands/config_cmds.js";
import { dataCommand } from "./commands/data_cmds.js";
import { demoCommand } from "./commands/demo.js";
import { evalCommand, predictCommand } from "./commands/eval_cmds.js";
import { generateCommand, initModelCommand } from "./commands/model_cmds.js";
import { serveCommand } from "./commands/serve.js";
import { grpoCommand, sftCommand } from "./commands/train_cmds.js";
import { extractNproc, launchWorkers } from "./launch.js";
import { selfcheck } from "./selfcheck.js";
import { packageVersion } from "./version.js";

const USAGE = `usage: vlm-grpo <command> [options]     (vlm-grpo <command> --help for its options)
       vlm-grpo --version

commands:
  demo         the whole pipeline on synthetic data with a small model (no download):
               synth data, SFT, GRPO, and base vs SFT vs GRPO evaluation
  data         data check PATH | data synth --out DIR
  init-model   write a randomly initialized model folder (HF format) from a preset
  sft          supervised warm-up (LoRA or full), resumable
  grpo         GRPO with the recall-first reward, resumable
  eval         recall-first evaluation of one or several models (metrics.json, report.html)
  predict      one JSON line per image: decision, categories, score
  generate     one completion for an image and a prompt
  serve        HTTP server: moderation endpoint, OpenAI-compatible chat, metrics, review page
  config       config defaults (every key, its default and doc) | config check FILE...
  selfcheck    check the tensor engine (libtorch, threads, BLAS, a small training run)

sft, grpo, eval and predict run data-parallel with --nproc N (N workers on this
machine) or under torchrun (torchrun --nproc-per-node N --no-python vlm-grpo sft ...)

exit codes: 0 success, 1 error, 2 bad usage or config, ${TrainingStalledError.EXIT_CODE} GRPO not learning (grpo.on_stall: stop)`;

const SELFCHECK_USAGE = "usage: vlm-grpo selfcheck\nchecks the tensor engine: libtorch version, threads, BLAS, matmul speed, a tiny training run, a safetensors round trip";

const COMMANDS: Record<string, (argv: readonly string[]) => Promise<number> | number> = {
  demo: demoCommand,
  data: dataCommand,
  "init-model": initModelCommand,
  sft: sftCommand,
  grpo: grpoCommand,
  eval: evalCommand,
  predict: predictCommand,
  generate: generateCommand,
  serve: serveCommand,
  config: configCommand,
  selfcheck: (argv) => {
    if (argv.includes("--help") || argv.includes("-h")) {
      console.log(SELFCHECK_USAGE);
      return 0;
    }
    if (argv.length) throw new UsageError(`unexpected argument '${argv[0]}'\n${SELFCHECK_USAGE}`);
    return selfcheck();
  },
};

async function main(argv: string[]): Promise<number> {
  // A --nproc worker has an IPC channel to its launcher (src/cli/launch.ts); it must not keep this process alive.
  process.channel?.unref();
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    console.log(USAGE);
    return 0;
  }
  if (command === "--version" || command === "-V" || command === "version") {
    console.log(packageVersion());
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    console.error(`vlm-grpo: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  const say = (e: unknown) => errorLine(command, (e as Error).message ?? String(e));
  // `-h` right after the command is --help for every command (those with subcommands included).
  const args = rest[0] === "-h" ? ["--help", ...rest.slice(1)] : rest;
  try {
    const launch = extractNproc(args);
    if (launch) return await launchWorkers(command, launch.nproc, launch.argv);
    return await run(args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(say(e));
      return 2;
    }
    if (e instanceof ConfigError) {
      console.error(`vlm-grpo ${command}: invalid config:\n${e.message}`);
      return 2;
    }
    console.error(say(e));
    if (process.env.VLM_DEBUG) console.error((e as Error).stack);
    return e instanceof TrainingStalledError ? e.exitCode : 1;
  }
}

// A command whose promise never settles (something awaited a promise nothing
// will resolve) would otherwise end with exit code 0 when the event loop runs
// dry, with nothing written: that is an error.
let settled = false;
process.on("beforeExit", () => {
  if (settled) return;
  console.error(`vlm-grpo ${process.argv[2] ?? ""}: stopped before finishing: the event loop ran out of work while the command was still waiting on a promise that nothing will settle`);
  process.exit(1);
});

main(process.argv.slice(2)).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (e) => {
    settled = true;
    console.error(e);
    process.exitCode = 1;
  },
);
