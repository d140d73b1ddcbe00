#!/usr/bin/env node
// The `vlm-grpo` command. Each subcommand lives in its own file.
import { selfcheck } from "./selfcheck.js";

const USAGE = `usage: vlm-grpo <command> [options]

commands:
  selfcheck    check the tensor engine: libtorch, threads, BLAS, matmul speed,
               a small training run and a safetensors round trip
  help         show this message

The training pipeline (data, init-model, sft, grpo, eval, demo) is being built.`;

function main(argv: string[]): number {
  const [command, ...rest] = argv;
  switch (command) {
    case "selfcheck":
      return selfcheck();
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return 0;
    default:
      console.error(`vlm-grpo: unknown command '${command}'${rest.length ? "" : ""}\n\n${USAGE}`);
      return 2;
  }
}

process.exitCode = main(process.argv.slice(2));
