// The reward registry: built-ins from a config, user reward modules loaded
// relative to the config file, and the errors that name the entry or module.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";

import { buildRewardFunctions, computeRewards, DEFAULT_REWARD_SPECS, loadUserReward, makeRewardContext } from "../../src/rewards/index.js";

// dist/test/rewards -> repository root (fixtures are not copied by tsc).
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");
const FIXTURES = path.join(ROOT, "test/fixtures/rewards");
const CATS = ["nudity", "weapons"];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-grpo-rewards-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ctx = makeRewardContext(
  ["<answer>weapons</answer>", "<answer>safe</answer>", "<think>a long look at the picture</think><answer>nudity, weapons</answer>", "<answer>nudity</answer>"],
  [["weapons"], [], ["nudity"], []],
  CATS,
);

describe("buildRewardFunctions: built-ins", () => {
  test("the default list is recall (1), format (0.1), category_bonus (0.5)", async () => {
    const fns = await buildRewardFunctions();
    assert.deepEqual(
      fns.map((f) => [f.name, f.weight]),
      [
        ["recall", 1],
        ["format", 0.1],
        ["category_bonus", 0.5],
      ],
    );
    assert.equal(DEFAULT_REWARD_SPECS.length, 3);
  });

  test("weights and options from the config reach the functions", async () => {
    const fns = await buildRewardFunctions([
      { name: "recall", weight: 2, options: { falsePositive: -1 } },
      { name: "category_bonus", weight: 1, options: { mode: "exact" } },
    ]);
    const r = await computeRewards(fns, ctx);
    assert.deepEqual([...r.perFunction.recall], [1, 0.1, 1, -1]);
    assert.deepEqual([...r.perFunction.category_bonus].map((v) => (Number.isNaN(v) ? null : v)), [1, null, 0, null]);
    assert.deepEqual([...r.total], [3, 0.2, 2, -2]);
  });

  test("config errors name the entry and the problem", async () => {
    const cases: [unknown[], RegExp][] = [
      [[], /rewards: expected a non-empty list/],
      [[{ name: "recal" }], /rewards\[0\]: unknown reward 'recal' \(built-ins: recall, format, category_bonus/],
      [[{ name: "recall" }, { name: "format", wieght: 1 }], /rewards\[1\]: unknown key 'wieght'/],
      [[{ name: "recall", weight: "1" }], /rewards\[0\]: 'weight' must be a finite number, got "1"/],
      [[{ name: "recall", options: { tp: 1 } }], /rewards\[0\]: reward 'recall': unknown option 'tp'/],
      [[{ weight: 1 }], /rewards\[0\]: needs 'name'/],
      [[{ name: "recall" }, { name: "recall" }], /rewards\[1\]: reward name 'recall' is already used by rewards\[0\]/],
      [["recall"], /rewards\[0\]: expected an object with 'name' or 'module'/],
      [[{ name: "toString" }], /unknown reward 'toString'/],
    ];
    for (const [specs, msg] of cases) await assert.rejects(buildRewardFunctions(specs as never), msg);
  });
});

describe("user reward modules", () => {
  test("default export, resolved relative to the config folder, with options; named by the file", async () => {
    const fns = await buildRewardFunctions(
      [{ name: "recall" }, { module: "./short_answer_reward.mjs", weight: 0.5, options: { maxChars: 30 } }],
      { configDir: FIXTURES },
    );
    assert.equal(fns[1].name, "short_answer_reward");
    assert.equal(fns[1].weight, 0.5);
    const r = await computeRewards(fns, ctx);
    assert.deepEqual([...r.perFunction.short_answer_reward].map((v) => (Number.isNaN(v) ? null : v)), [1, null, 0, null]);
    assert.deepEqual([...r.total], [1.5, 0.1, 1, -0.2]);
  });

  test("a named export, an explicit name, and an async function", async () => {
    const [rf] = await buildRewardFunctions([{ module: path.join(FIXTURES, "short_answer_reward.mjs"), export: "namedCount", name: "count" }]);
    assert.equal(rf.name, "count");
    assert.deepEqual(await rf.fn(ctx), [1, 0, 2, 1]);
    const [rf2] = await buildRewardFunctions([{ module: "short_answer_reward.mjs", export: "namedCount" }], { configDir: FIXTURES });
    assert.equal(rf2.name, "namedCount");
  });

  test("a module written to a temp folder (.mjs) is loaded by a config there", async () => {
    fs.mkdirSync(path.join(tmp, "sub"), { recursive: true });
    fs.writeFileSync(path.join(tmp, "sub", "flag_all.mjs"), "export default (ctx, o) => ctx.completions.map(() => o.value);\n");
    const fns = await buildRewardFunctions([{ module: "sub/flag_all.mjs", options: { value: 0.25 } }], { configDir: tmp });
    const r = await computeRewards(fns, ctx);
    assert.deepEqual([...r.total], [0.25, 0.25, 0.25, 0.25]);
  });

  test("errors name the module path: missing file, failing import, missing export, not a function", async () => {
    fs.writeFileSync(path.join(tmp, "broken.mjs"), "export default (ctx) => ;\n");
    fs.writeFileSync(path.join(tmp, "throws.mjs"), "throw new Error('init failed');\n");
    const cases: [object, RegExp][] = [
      [{ module: "./nope.mjs" }, /rewards\[0\]: reward module \.\/nope\.mjs \(resolved to .*nope\.mjs\): file not found/],
      [{ module: "./broken.mjs" }, /reward module \.\/broken\.mjs .*: import failed: .*Unexpected token/],
      [{ module: "./throws.mjs" }, /reward module \.\/throws\.mjs .*: import failed: init failed/],
      [{ module: path.join(FIXTURES, "short_answer_reward.mjs"), export: "missing" }, /has no export 'missing' \(exports: default, namedCount, notAFunction\)/],
      [{ module: path.join(FIXTURES, "short_answer_reward.mjs"), export: "notAFunction" }, /export 'notAFunction' is a number, expected a function/],
      [{ module: "" }, /'module' must be a non-empty path/],
      [{ module: "./x.mjs", exprt: "y" }, /rewards\[0\]: unknown key 'exprt'/],
      [{ module: "./throws.mjs", options: [1] }, /'options' must be an object/],
    ];
    for (const [spec, msg] of cases) await assert.rejects(buildRewardFunctions([spec as never], { configDir: tmp }), msg);
  });

  test("a user function's runtime errors name the reward", async () => {
    fs.writeFileSync(path.join(tmp, "bad_len.mjs"), "export default (ctx) => [1];\n");
    const fns = await buildRewardFunctions([{ module: "./bad_len.mjs" }], { configDir: tmp });
    await assert.rejects(computeRewards(fns, ctx), /reward function 'bad_len' returned 1 scores for 4 completions/);
  });

  test("a TypeScript module loads where Node strips types, else the error says how to fix it", async () => {
    fs.writeFileSync(path.join(tmp, "typed.ts"), "export default function r(ctx: { completions: string[] }): number[] { return ctx.completions.map(() => 1); }\n");
    const stripsTypes = Boolean((process.features as { typescript?: unknown }).typescript);
    if (stripsTypes) {
      const rf = await loadUserReward({ module: "./typed.ts" }, tmp);
      assert.deepEqual(await rf.fn(ctx), [1, 1, 1, 1]);
    } else {
      await assert.rejects(loadUserReward({ module: "./typed.ts" }, tmp), /reward module \.\/typed\.ts .*cannot import TypeScript; compile the module to \.js/);
    }
  });
});
