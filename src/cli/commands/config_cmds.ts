// `vlm-grpo config defaults` (every key with its default) and
// `vlm-grpo config check FILE...` (validate config files, with overrides).
import { loadConfig } from "../../config/load.js";
import { defaultsYaml } from "../../config/defaults.js";
import { runConfigSchema } from "../../config/run_config.js";
import { parseArgs, UsageError } from "../args.js";

const USAGE = `usage:
  vlm-grpo config defaults           print every run-config key with its default and doc (YAML)
  vlm-grpo config check FILE.yaml... validate config files; prints each resolved config's source and exits 1 on errors`;

export async function configCommand(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  if (sub === "defaults") {
    if (rest.length) throw new UsageError(`config defaults: unexpected argument '${rest[0]}'\n${USAGE}`);
    process.stdout.write(defaultsYaml());
    return 0;
  }
  if (sub === "check") {
    const p = parseArgs(rest, {});
    if (p.positionals.length === 0) throw new UsageError(`config check: give one or more FILE.yaml\n${USAGE}`);
    for (const f of p.positionals) {
      loadConfig(runConfigSchema, { file: f });
      console.log(`${f}: ok`);
    }
    return 0;
  }
  console.log(USAGE);
  return sub === undefined || sub === "--help" || sub === "-h" || sub === "help" ? 0 : 2;
}
