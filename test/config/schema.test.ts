import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, closest, editDistance, type InferInput, validate } from "../../src/config/schema.js";
import { type Config, schema } from "./fixture_schema.js";


// Compile-time checks of the inferred types (this file fails to build if they regress).
const typeChecks = (c: Config, input: InferInput<typeof schema>) => {
  const lt: "grpo" | "bnpo" | "dr_grpo" | "dapo" = c.grpo.loss_type;
  const seed: number | undefined = c.seed;
  const rank: number = c.sft.lora.rank;
  const temp: number | null = c.grpo.temperature;
  const every: number | string = c.eval_every;
  const cats: string[] = c.categories;
  const prompt: string | undefined = c.prompts["nudity"];
  // @ts-expect-error loss_type is a literal union, not any string
  const bad: Config["grpo"]["loss_type"] = "nope";
  // @ts-expect-error model has no default: required in the input
  const noModel: InferInput<typeof schema> = {};
  const minimal: InferInput<typeof schema> = { model: "m" };
  return [lt, seed, rank, temp, every, cats, prompt, bad, noModel, minimal, input];
};
void typeChecks;

test("fills defaults, keeps given values, drops unset optionals", () => {
  const c = validate(schema, { model: "m", sft: { lora: { rank: 8 } }, grpo: null, seed: null });
  assert.deepEqual(c, {
    run_name: "run",
    model: "m",
    categories: ["nudity", "weapons"],
    eval_every: "epoch",
    prompts: {},
    sft: { lr: 1e-4, lora: { rank: 8, alpha: 32, targets: ["q_proj", "v_proj"] } },
    grpo: { beta: 0.04, loss_type: "dapo", num_generations: 8, scale_rewards: true, temperature: null },
  });
  assert.ok(!("seed" in c));
  c.categories.push("gore"); // defaults are copies
  assert.deepEqual(validate(schema, { model: "m" }).categories, ["nudity", "weapons"]);
  assert.equal(validate(schema, { model: "m", grpo: { temperature: 0.7 }, eval_every: 50 }).grpo.temperature, 0.7);
});

test("every error is collected, prefixed by the file, with path, expected type and given value", () => {
  const raw = {
    model: "m",
    sft: { lora: { rank: "eight", alhpa: 16 } },
    grpo: { betta: 0.1, loss_type: "grpoo", num_generations: 2.5, beta: -1 },
    categories: ["nudity", ""],
    eval_every: "weekly",
    prompts: { nudity: 3 },
  };
  let err: ConfigError | undefined;
  try {
    validate(schema, raw, { file: "grpo.yaml" });
  } catch (e) {
    err = e as ConfigError;
  }
  assert.ok(err instanceof ConfigError);
  assert.deepEqual(err.errors.sort(), [
    'grpo.yaml: categories[1]: must not be empty',
    'grpo.yaml: eval_every: expected one of "epoch", got "weekly"',
    'grpo.yaml: grpo.beta: must be >= 0, got -1',
    'grpo.yaml: grpo.betta: unknown key; did you mean "beta"? (valid keys: beta, loss_type, num_generations, scale_rewards, temperature)',
    'grpo.yaml: grpo.loss_type: expected one of "grpo" | "bnpo" | "dr_grpo" | "dapo", got "grpoo"; did you mean "grpo"?',
    'grpo.yaml: grpo.num_generations: expected an integer, got 2.5',
    'grpo.yaml: prompts.nudity: expected string, got number 3',
    'grpo.yaml: sft.lora.alhpa: unknown key; did you mean "alpha"? (valid keys: rank, alpha, targets)',
    'grpo.yaml: sft.lora.rank: expected integer >= 1, got string "eight"',
  ]);
  assert.match(err.message, /^9 config errors:\n {2}grpo.yaml: /);
});

test("missing required keys, wrong container types, union mismatch, range max", () => {
  assert.throws(() => validate(schema, {}), (e: ConfigError) => e.errors.length === 1 && e.errors[0] === "model: missing required key (expected string)");
  assert.throws(() => validate(schema, { model: "m", sft: [1] }), /sft: expected object, got list \[1\]/);
  assert.throws(() => validate(schema, { model: "m", categories: "nudity" }), /categories: expected list of string, got string "nudity"/);
  assert.throws(() => validate(schema, { model: "m", eval_every: true }), /eval_every: expected integer >= 1 \| "epoch", got boolean true/);
  assert.throws(() => validate(schema, { model: "m", eval_every: 0 }), /eval_every: must be >= 1, got 0/);
  assert.throws(() => validate(schema, { model: "m", grpo: { num_generations: 128 } }), /grpo.num_generations: must be <= 64, got 128/);
  assert.throws(() => validate(schema, { model: "m", categories: [] }), /categories: expected at least 1 item\(s\), got 0/);
  assert.throws(() => validate(schema, { model: null }), /model: expected string, got null/);
  assert.throws(() => validate(schema, "text", { file: "x.yaml" }), (e: Error) => e.message === 'x.yaml: (root): expected object, got string "text"');
});

test("a locator replaces the file prefix per path", () => {
  assert.throws(
    () => validate(schema, { model: "m", grpo: { beta: "x" } }, { file: "f.yaml", locate: (p) => (p[0] === "grpo" ? "f.yaml:7" : undefined) }),
    (e: Error) => e.message === 'f.yaml:7: grpo.beta: expected number >= 0, got string "x"',
  );
});

test("edit distance and closest-key suggestions", () => {
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(closest("betta", ["beta", "loss_type"]), "beta");
  assert.equal(closest("LR", ["lr", "beta"]), "lr");
  assert.equal(closest("completely_different", ["lr", "beta"]), undefined);
});
