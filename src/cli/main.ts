#!/usr/bin/env node
// The `vlm-grpo` command. Each subcommand lives in its own file.
import { ConfigError } from "../config/schema.js";
import { UsageError } from "./args.js";
import { configCommand } from "./commands/config_cmds.js";
import { dataCommand } from "./commands/data_cmds.js";
import { demoCommand } from "./commands/demo.js";
import { evalCommand, predictCommand } from "./commands/eval_cmds.js";
import { generateCommand, initModelCommand } from "./commands/model_cmds.js";
import { grpoCommand, sftCommand } from "./commands/train_cmds.js";
import { selfcheck } from "./selfcheck.js";

const USAGE = `usage: vlm-grpo <command> [options]     (vlm-grpo <command> --help for its options)

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
  config       config defaults (every key, its default and doc) | config check FILE...
  selfcheck    check the tensor engine (libtorch, threads, BLAS, a small training run)`;

const COMMANDS: Record<string, (argv: readonly string[]) => Promise<number> | number> = {
  demo: demoCommand,
  data: dataCommand,
  "init-model": initModelCommand,
  sft: sftCommand,
  grpo: grpoCommand,
  eval: evalCommand,
  predict: predictCommand,
  generate: generateCommand,
  config: configCommand,
  selfcheck: () => selfcheck(),
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    console.log(USAGE);
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    console.error(`vlm-grpo: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`vlm-grpo ${command}: ${e.message}`);
      return 2;
    }
    if (e instanceof ConfigError) {
      console.error(`vlm-grpo ${command}: invalid config:\n${e.message}`);
      return 2;
    }
    console.error(`vlm-grpo ${command}: ${(e as Error).message ?? String(e)}`);
    if (process.env.VLM_DEBUG) console.error((e as Error).stack);
    return 1;
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
