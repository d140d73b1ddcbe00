import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { describeSchema, dumpConfig, loadConfig } from "../../src/config/load.js";
import { applyOverrides, parseOverrideArgs, parseOverrideValue } from "../../src/config/overrides.js";
import { ConfigError, s } from "../../src/config/schema.js";
import { schema } from "./fixture_schema.js";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "vlm-config-"));
const write = (text: string) => {
  const f = path.join(tmp(), "grpo.yaml");
  fs.writeFileSync(f, text);
  return f;
};
const errorsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.errors;
    throw e;
  }
  assert.fail("expected a ConfigError");
};

test("YAML file + overrides -> resolved config", () => {
  const file = write("model: /models/smolvlm\nsft:\n  lr: 2e-5\n  lora:\n    rank: 4\ngrpo:\n  beta: 0.1\n");
  const c = loadConfig(schema, {
    file,
    overrides: ["--grpo.beta", "0.02", "--sft.lora.rank=8", "--grpo.scale_rewards", "no", "--run_name=123", "--categories", '["a","b"]', "--grpo.temperature=null", "--seed", "-3"],
  });
  assert.equal(c.model, "/models/smolvlm");
  assert.equal(c.sft.lr, 2e-5);
  assert.equal(c.sft.lora.rank, 8);
  assert.equal(c.grpo.beta, 0.02);
  assert.equal(c.grpo.scale_rewards, false);
  assert.equal(c.run_name, "123"); // a string key keeps numeric-looking text as text
  assert.deepEqual(c.categories, ["a", "b"]);
  assert.equal(c.grpo.temperature, null);
  assert.equal(c.seed, -3);
  assert.equal(c.grpo.loss_type, "dapo");
});

test("override forms: bare boolean flag, comma lists, union values, JSON objects", () => {
  // Applied in order: the JSON object replaces sft.lora, then one of its keys is set.
  const c = loadConfig(schema, { overrides: ["--model=m", "--grpo.scale_rewards", "--sft.lora", '{"rank": 2}', "--sft.lora.targets=q_proj, k_proj", "--eval_every=100"] });
  assert.equal(c.grpo.scale_rewards, true);
  assert.equal(c.eval_every, 100);
  assert.deepEqual(c.sft.lora, { rank: 2, alpha: 32, targets: ["q_proj", "k_proj"] });
  assert.equal(loadConfig(schema, { overrides: ["--model=m", "--eval_every", "epoch"] }).eval_every, "epoch");
  assert.equal(parseOverrideValue("1e-3", undefined), 0.001);
  assert.equal(parseOverrideValue("true", undefined), true);
  assert.equal(parseOverrideValue("null", undefined), null);
  assert.deepEqual(parseOverrideValue("[1, 2]", undefined), [1, 2]);
  assert.equal(parseOverrideValue("hello", undefined), "hello");
  assert.equal(parseOverrideValue("[oops", undefined), "[oops");
  assert.deepEqual(parseOverrideValue("1,2", s.array(s.number())), [1, 2]);
  assert.deepEqual(parseOverrideValue("", s.array(s.number())), []);
});

test("override errors name the override and the closest key", () => {
  assert.deepEqual(errorsOf(() => loadConfig(schema, { overrides: ["--model=m", "--grpo.betta=1", "--sftt.lr=1"] })), [
    '--grpo.betta: unknown key "grpo.betta"; did you mean "grpo.beta"?',
    '--sftt.lr: unknown key "sftt.lr"; did you mean "sft.lr"?',
  ]);
  assert.deepEqual(errorsOf(() => loadConfig(schema, { overrides: ["--model=m", "--grpo.beta=abc", "--grpo.scale_rewards=maybe"] })), [
    '--grpo.beta: grpo.beta: expected number >= 0, got string "abc"',
    '--grpo.scale_rewards: grpo.scale_rewards: expected boolean, got string "maybe"',
  ]);
  assert.deepEqual(errorsOf(() => loadConfig(schema, { overrides: ["--model=m", "--sft.lr.x=1"] })), ['--sft.lr.x: sft.lr has no sub-keys (it is not an object), cannot set "x"']);
  assert.deepEqual(errorsOf(() => parseOverrideArgs(["positional", "--a..b=1", "--grpo.beta"], schema)), [
    'unexpected argument "positional": overrides look like --key.path=value or --key.path value',
    '--a..b: empty key segment in "a..b"',
    "--grpo.beta: missing value (expected number)",
  ]);
  assert.deepEqual(errorsOf(() => loadConfig(schema, { overrides: ["--model=m", "--categories=[1,"] })), ["--categories: not a valid JSON list: " + jsonError("[1,")]);
});

function jsonError(t: string): string {
  try {
    JSON.parse(t);
  } catch (e) {
    return (e as Error).message;
  }
  return "";
}

test("an override wins over the file and is named instead of the file line", () => {
  const file = write("model: m\ngrpo:\n  beta: oops\n");
  assert.deepEqual(errorsOf(() => loadConfig(schema, { file })), [`${file}:3: grpo.beta: expected number >= 0, got string "oops"`]);
  assert.equal(loadConfig(schema, { file, overrides: ["--grpo.beta=0.5"] }).grpo.beta, 0.5);
  const { sources } = applyOverrides(schema, { grpo: { beta: 1 } }, parseOverrideArgs(["--grpo.beta=2"], schema));
  assert.deepEqual([...sources], [["grpo.beta", "--grpo.beta"]]);
});

test("validation errors from a file name the file and line of the key", () => {
  const file = write("model: m\nsft:\n  lora:\n    rank: 0\n    alhpa: 3\ncategories:\n  - nudity\n  - ''\n");
  // Order: a level's unknown keys, then its keys in schema order (categories precedes sft).
  assert.deepEqual(errorsOf(() => loadConfig(schema, { file })), [
    `${file}:8: categories[1]: must not be empty`,
    `${file}:5: sft.lora.alhpa: unknown key; did you mean "alpha"? (valid keys: rank, alpha, targets)`,
    `${file}:4: sft.lora.rank: must be >= 1, got 0`,
  ]);
  // A missing key is reported against the file (no line to point at).
  assert.deepEqual(errorsOf(() => loadConfig(schema, { file: write("run_name: x\n") })).map((e) => e.replace(/^.*grpo\.yaml/, "F")), ["F: model: missing required key (expected string)"]);
});

test("YAML syntax errors name file, line and column", () => {
  const file = write("model: m\ngrpo:\n  beta: [0.1, 0.2\nsft: {}\n");
  const errs = errorsOf(() => loadConfig(schema, { file }));
  assert.equal(errs.length, 1);
  assert.match(errs[0], new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:4:1: YAML error: .*sequence`));
  const dup = errorsOf(() => loadConfig(schema, { text: "model: a\nmodel: b\n", file: "dup.yaml" }));
  assert.deepEqual(dup, ["dup.yaml:2:1: YAML error: Map keys must be unique"]);
  assert.match(errorsOf(() => loadConfig(schema, { text: "model: !!js/function 'x'\n", file: "t.yaml" }))[0], /^t.yaml:1:8: YAML error: /);
  assert.deepEqual(errorsOf(() => loadConfig(schema, { text: "- a\n- b\n", file: "l.yaml" })), ["l.yaml: expected a mapping of keys at the top level, got a list"]);
  assert.match(errorsOf(() => loadConfig(schema, { file: "/nonexistent/x.yaml" }))[0], /^\/nonexistent\/x.yaml: cannot read config file: ENOENT/);
});

test("YAML 1.2 scalars: 1e-4 is a number, empty sections take defaults", () => {
  const c = loadConfig(schema, { text: "model: m\nsft:\n  lr: 1e-4\ngrpo:\n", file: "x.yaml" });
  assert.equal(c.sft.lr, 1e-4);
  assert.equal(c.grpo.beta, 0.04);
  assert.equal(loadConfig(schema, { text: "", overrides: ["--model=m"] }).model, "m");
});

test("dumpConfig round-trips through loadConfig and carries docs as comments", () => {
  const c = loadConfig(schema, { overrides: ["--model=m", "--seed=5", "--prompts.nudity=Is there nudity?"] });
  const yaml = dumpConfig(c, { schema, header: "resolved config\nrun: test" });
  assert.match(yaml, /^# resolved config\n# run: test\n/);
  assert.match(yaml, /# KL coefficient\.\n {2}beta: 0\.04\n/);
  assert.match(yaml, /# LoRA rank\.\n {4}rank: 16\n/);
  assert.deepEqual(loadConfig(schema, { text: yaml }), c);
  const noSeed = loadConfig(schema, { overrides: ["--model=m"] });
  assert.ok(!dumpConfig(noSeed).includes("seed"));
  assert.deepEqual(loadConfig(schema, { text: dumpConfig(noSeed) }), noSeed);
});

test("describeSchema lists keys, types, defaults and docs", () => {
  const help = describeSchema(schema, { prefix: "--" });
  const line = (key: string) => help.split("\n").find((l) => l.trimStart().startsWith(`--${key} `));
  assert.match(line("grpo.beta")!, /--grpo\.beta\s+number >= 0\s+default: 0\.04$/);
  assert.match(line("grpo.loss_type")!, /"grpo" \| "bnpo" \| "dr_grpo" \| "dapo"\s+default: "dapo"$/);
  assert.match(line("model")!, /string\s+required$/);
  assert.match(line("seed")!, /integer\s+optional$/);
  assert.match(line("grpo.temperature")!, /number >= 0 \| null\s+default: null$/);
  assert.match(help, /--grpo\.beta.*\n {6}KL coefficient\.\n/);
  assert.match(help, /^grpo: GRPO stage\.$/m);
  // Columns line up: every key line has its type starting at the same offset.
  const keyLines = help.split("\n").filter((l) => l.startsWith("  --"));
  assert.equal(keyLines.length, 15); // one per leaf key of the fixture schema
  const typeStart = 2 + Math.max(...keyLines.map((l) => l.trim().split(" ")[0].length)) + 2;
  for (const l of keyLines) assert.ok(/^ {2}\S+ +$/.test(l.slice(0, typeStart)) && l[typeStart] !== " ", l);
});
