// configs/defaults.yaml: every run-config key with its default and its doc,
// generated from the schema (`vlm-grpo config defaults`). A test keeps the
// checked-in file equal to this output, so documentation cannot drift from
// the code's defaults.
import { dumpConfig } from "./load.js";
import { runConfigSchema } from "./run_config.js";
import { validate } from "./schema.js";

export const DEFAULTS_HEADER = [
  "Every run-config key with its default, generated from src/config/run_config.ts:",
  "  node dist/src/cli/main.js config defaults > configs/defaults.yaml",
  "Do not edit by hand; a test checks this file against the code.",
].join("\n");

/** The defaults YAML (keys with docs as comments). */
export function defaultsYaml(): string {
  return dumpConfig(validate(runConfigSchema, {}), { schema: runConfigSchema, header: DEFAULTS_HEADER });
}
