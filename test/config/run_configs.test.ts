// One source of truth for run configs: the schema's defaults, the generated
// configs/defaults.yaml, the ready configs and the demo's values cannot drift
// apart.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { DEMO_CONFIG_FILE, loadDemoConfig } from "../../src/cli/commands/demo.js";
import { defaultsYaml } from "../../src/config/defaults.js";
import { loadConfig } from "../../src/config/load.js";
import { runConfigSchema } from "../../src/config/run_config.js";
import { validate } from "../../src/config/schema.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const CONFIGS = path.join(ROOT, "configs");

test("configs/defaults.yaml is what the schema generates (regenerate: vlm-grpo config defaults > configs/defaults.yaml)", () => {
  assert.equal(fs.readFileSync(path.join(CONFIGS, "defaults.yaml"), "utf8"), defaultsYaml());
});

test("configs/defaults.yaml loads to exactly the schema's defaults", () => {
  assert.deepEqual(loadConfig(runConfigSchema, { file: path.join(CONFIGS, "defaults.yaml") }), validate(runConfigSchema, {}));
});

test("every ready config in configs/ validates against the schema", () => {
  const files = fs.readdirSync(CONFIGS).filter((f) => f.endsWith(".yaml"));
  assert.ok(files.length >= 5, `configs/ holds ${files.join(", ")}`);
  for (const f of files) assert.doesNotThrow(() => loadConfig(runConfigSchema, { file: path.join(CONFIGS, f) }), f);
});

test("the demo runs with configs/demo.yaml and nothing else", () => {
  assert.equal(DEMO_CONFIG_FILE, path.join(CONFIGS, "demo.yaml"));
  assert.deepEqual(loadDemoConfig(), loadConfig(runConfigSchema, { file: path.join(CONFIGS, "demo.yaml") }));
  // An edited file changes what the demo runs (no embedded copy of its values).
  const tmp = fs.mkdtempSync(path.join(ROOT, "dist", "demo-cfg-"));
  try {
    const edited = path.join(tmp, "demo.yaml");
    fs.writeFileSync(edited, fs.readFileSync(DEMO_CONFIG_FILE, "utf8").replace(/^ {2}steps: \d+/m, "  steps: 3"));
    assert.equal(loadDemoConfig(edited).grpo.steps, 3);
    assert.equal(loadDemoConfig(edited, ["--grpo.steps", "7"]).grpo.steps, 7);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
