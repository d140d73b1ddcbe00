// User reward modules in worker threads: a stalled promise, a busy loop, a
// crash after returning, process.exit, a top-level loop and an uncloneable
// result each end in an error that names the reward, its module and (for
// the time limit) the limit, within a bounded time; the main thread stays
// free while user code spins. (Before isolation a never-settling promise let
// the process drain its event loop and exit 0, and a busy loop blocked the
// main thread, signals included; each test here has its own timeout so it
// fails instead of hanging on such code.)
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { buildRewardFunctions, closeRewardFunctions, computeRewards, loadUserReward, makeRewardContext } from "../../src/rewards/index.js";

let dir = "";
const ctx = makeRewardContext(["<answer>safe</answer>", "<answer>weapons</answer>"], [[], ["weapons"]], ["nudity", "weapons"]);

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-isolated-"));
  const files: Record<string, string> = {
    "stall.mjs": "export default () => new Promise(() => {});\n",
    "spin.mjs": "export default () => { for (;;) {} };\n",
    "late_throw.mjs": "export default (ctx) => { setTimeout(() => { throw new Error('boom later'); }, 10); return new Promise(() => {}); };\n",
    "exits.mjs": "export default () => { process.exit(3); };\n",
    "top_spin.mjs": "for (;;) {}\nexport default () => [];\n",
    "uncloneable.mjs": "export default (ctx) => ctx.completions.map(() => () => 1);\n",
    "count.mjs": "let calls = 0;\nexport default (ctx, o) => { calls++; return ctx.completions.map(() => calls * o.k); };\n",
  };
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Seconds `p` took to reject, and its error. */
async function timedRejection(p: Promise<unknown>): Promise<{ seconds: number; error: Error }> {
  const t0 = performance.now();
  try {
    await p;
  } catch (e) {
    return { seconds: (performance.now() - t0) / 1000, error: e as Error };
  }
  throw new Error("expected a rejection");
}

describe("user reward modules run in a worker thread with a time limit", () => {
  test("a promise that never settles fails after the limit, naming the reward, the module and the limit", { timeout: 30_000 }, async () => {
    const fns = await buildRewardFunctions([{ module: "./stall.mjs" }], { configDir: dir, timeoutSeconds: 0.5 });
    try {
      const r = await timedRejection(computeRewards(fns, ctx));
      assert.match(r.error.message, /reward function 'stall' \(module \.\/stall\.mjs\) did not return within 0\.5 s \(grpo\.reward_timeout_s\)/);
      assert.ok(r.seconds >= 0.45 && r.seconds < 10, `rejected after ${r.seconds} s`);
    } finally {
      await closeRewardFunctions(fns);
    }
  });

  test("a busy loop is stopped after the limit while the main thread keeps running", { timeout: 30_000 }, async () => {
    const [rf] = await buildRewardFunctions([{ module: "./spin.mjs" }], { configDir: dir, timeoutSeconds: 1 });
    let ticks = 0;
    const iv = setInterval(() => ticks++, 50);
    try {
      const r = await timedRejection(Promise.resolve(rf.fn(ctx)));
      assert.match(r.error.message, /reward function 'spin' \(module \.\/spin\.mjs\) did not return within 1 s/);
      assert.ok(r.seconds >= 0.95 && r.seconds < 10, `rejected after ${r.seconds} s`);
      // The main thread ran its timers while the worker spun (a 50 ms interval over >= 1 s).
      assert.ok(ticks >= 3, `only ${ticks} timer ticks on the main thread during the spin`);
      // The worker is gone: later calls fail at once with the same reason.
      await assert.rejects(Promise.resolve(rf.fn(ctx)), /did not return within 1 s/);
    } finally {
      clearInterval(iv);
      await rf.close?.();
    }
  });

  test("an exception thrown later by the module, or process.exit, fails the pending call naming the module", { timeout: 30_000 }, async () => {
    const fns = await buildRewardFunctions([{ module: "./late_throw.mjs" }, { module: "./exits.mjs" }], { configDir: dir, timeoutSeconds: 20 });
    try {
      const a = await timedRejection(Promise.resolve(fns[0].fn(ctx)));
      assert.match(a.error.message, /reward function 'late_throw' \(module \.\/late_throw\.mjs\) crashed: boom later/);
      assert.ok(a.seconds < 10);
      const b = await timedRejection(Promise.resolve(fns[1].fn(ctx)));
      assert.match(b.error.message, /reward function 'exits' \(module \.\/exits\.mjs\): its worker thread exited \(code 3\)/);
    } finally {
      await closeRewardFunctions(fns);
    }
  });

  test("a module whose top-level code loops forever fails to load within the limit", { timeout: 30_000 }, async () => {
    const r = await timedRejection(buildRewardFunctions([{ module: "./top_spin.mjs" }], { configDir: dir, timeoutSeconds: 1, loadTimeoutSeconds: 2 }));
    assert.match(r.error.message, /rewards\[0\]: reward module \.\/top_spin\.mjs: loading did not finish within 2 s; does its top-level code wait or loop forever\?/);
    assert.ok(r.seconds < 10);
  });

  test("a result that cannot be sent back names the reward and what to return", { timeout: 30_000 }, async () => {
    const fns = await buildRewardFunctions([{ module: "./uncloneable.mjs" }], { configDir: dir, timeoutSeconds: 10 });
    try {
      await assert.rejects(computeRewards(fns, ctx), /reward function 'uncloneable' threw: returned a value that cannot be sent back from its worker thread .*return an array of numbers or nulls/);
    } finally {
      await closeRewardFunctions(fns);
    }
  });

  test("a working module keeps its state across calls in its worker and gets its options", { timeout: 30_000 }, async () => {
    const rf = await loadUserReward({ module: "./count.mjs", options: { k: 0.5 } }, dir, { timeoutSeconds: 10 });
    try {
      assert.deepEqual(await rf.fn(ctx), [0.5, 0.5]);
      assert.deepEqual(await rf.fn(ctx), [1, 1]);
    } finally {
      await rf.close?.();
    }
    await assert.rejects(Promise.resolve(rf.fn(ctx)), /reward function 'count' \(module \.\/count\.mjs\): its worker thread was closed/);
  });

  test("the time limit must be positive", async () => {
    await assert.rejects(loadUserReward({ module: "./count.mjs" }, dir, { timeoutSeconds: 0 }), /time limit must be a positive number of seconds, got 0/);
  });

  test("an idle reward worker never keeps the process alive (a script that does not close it exits)", async () => {
    const registry = new URL("../../src/rewards/index.js", import.meta.url).href;
    const script = path.join(dir, "leave_open.mjs");
    fs.writeFileSync(
      script,
      `import { buildRewardFunctions, computeRewards, makeRewardContext } from ${JSON.stringify(registry)};\n` +
        `const fns = await buildRewardFunctions([{ module: "./count.mjs", options: { k: 1 } }], { configDir: ${JSON.stringify(dir)} });\n` +
        `await computeRewards(fns, makeRewardContext(["a"], [[]], ["nudity"]));\n` +
        `console.log("done");\n`,
    );
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 30_000 });
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(r.status, 0, `exit ${r.status} signal ${r.signal}: ${r.stderr}`);
    assert.match(r.stdout, /done/);
    assert.ok(seconds < 20, `took ${seconds.toFixed(1)} s: the worker kept the process alive`);
  });
});
