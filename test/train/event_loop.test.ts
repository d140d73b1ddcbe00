// Why a training step yields to the event loop, tested: Node-API finalizers
// of released tensor handles run only from the loop (torch/event_loop.ts),
// and so do signal handlers. Before the trainer yielded, a GRPO run whose
// images were all cached never reached the loop again: its resident memory
// grew by about 0.8 MiB per step on the tiny model (bench/soak.ts,
// BENCHMARKS.md), and neither a timer nor SIGINT ran until the run ended.
// Also: the addon fixes glibc's mmap threshold (allocator.cpp), and
// cloneOutsideHeap keeps a copy out of the heap.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { validate } from "../../src/config/schema.js";
import { runConfigSchema } from "../../src/config/run_config.js";
import { synthesizeDataset } from "../../src/data/synth/writer.js";
import { initModel } from "../../src/models/init_model.js";
import { yieldToEventLoop } from "../../src/torch/event_loop.js";
import { allocatorInfo, liveTensors, mallocTrim, randn, tidy } from "../../src/torch/index.js";
import { runGrpo } from "../../src/train/grpo.js";

let root = "";
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-eventloop-"));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("yielding once per 1,000 iterations keeps a loop of 450,000 released handles flat (finalizers run)", async () => {
  const step = async (n: number) => {
    for (let i = 0; i < n; i++) {
      tidy(() => randn([4]).add(1).mul(2)); // 3 handles, all released
      if (i % 1000 === 999) await yieldToEventLoop();
    }
  };
  await step(20_000); // warm-up
  const rss0 = process.memoryUsage.rss();
  await step(150_000);
  const grown = (process.memoryUsage.rss() - rss0) / 2 ** 20;
  // Without the yields the same loop grows by ~100 MiB (~230 bytes per handle) on Node 20.
  assert.ok(grown < 25, `RSS grew by ${grown.toFixed(1)} MiB`);
  assert.equal(liveTensors() >= 0, true);
});

test("the addon fixes glibc's mmap threshold at 32 MiB and trim threshold at 256 MiB unless the user set them; mallocTrim answers", () => {
  const info = allocatorInfo();
  if (info.glibc && process.env.MALLOC_MMAP_THRESHOLD_ === undefined) assert.equal(info.mmapThreshold, 32 * 2 ** 20);
  if (info.glibc && process.env.MALLOC_TRIM_THRESHOLD_ === undefined) assert.equal(info.trimThreshold, 256 * 2 ** 20);
  if (!info.glibc) assert.deepEqual([info.mmapThreshold, info.trimThreshold], [null, null]);
  assert.equal(typeof mallocTrim(), "boolean");
});

test("a GRPO run with every image cached still runs timers and handles SIGINT between steps", { timeout: 600_000 }, async () => {
  // Two train images (one offensive, one safe): after step 1 every prompt is a cache hit.
  const ds = await synthesizeDataset({ outDir: path.join(root, "data"), n: 24, imageSize: 32, seed: 1 });
  const rows = fs.readFileSync(ds.manifest, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { labels: string[]; split: string });
  const firstPos = rows.findIndex((r) => r.labels.length > 0);
  const firstNeg = rows.findIndex((r) => r.labels.length === 0);
  rows.forEach((r, i) => (r.split = i === firstPos || i === firstNeg ? "train" : i % 2 ? "val" : "test"));
  const manifest = path.join(root, "data", "two_train.jsonl");
  fs.writeFileSync(manifest, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const model = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "model"), seed: 2 })).dir;
  const out = path.join(root, "run");
  const cfg = validate(
    runConfigSchema,
    {
      model,
      output_dir: out,
      data: { path: manifest },
      prompt: { system_prompt: "", user_prompt: "Categories: {categories}?" },
      lora: { enabled: true, rank: 4, alpha: 8 },
      grpo: { steps: 30, prompts_per_step: 2, num_generations: 2, max_completion_length: 4, log_every: 1, rewards: [{ name: "recall" }, { name: "format" }] },
    },
    { file: "test config" },
  );
  let running = true;
  let ticks = 0;
  let sentAtStep = 0;
  const metrics = path.join(out, "metrics.jsonl");
  // Once step 2 is logged (all images cached by then), send this process a real SIGINT.
  const iv = setInterval(() => {
    ticks++;
    const logged = fs.existsSync(metrics) ? fs.readFileSync(metrics, "utf8").split("\n").filter(Boolean).length : 0;
    if (running && sentAtStep === 0 && logged >= 2) {
      sentAtStep = logged;
      process.kill(process.pid, "SIGINT");
    }
  }, 20);
  let r;
  try {
    r = await runGrpo(cfg, { log: () => {}, progress: false });
  } finally {
    running = false;
    clearInterval(iv);
  }
  assert.ok(sentAtStep >= 2, `the timer never saw a logged step during the run (${ticks} ticks)`);
  assert.equal(r.interruptedBy, "SIGINT");
  assert.equal(r.stoppedEarly, true);
  assert.ok(r.steps <= sentAtStep + 1, `stopped at step ${r.steps}, the signal came after step ${sentAtStep}`);
  assert.ok(fs.existsSync(path.join(out, "checkpoints", `step-${String(r.steps).padStart(8, "0")}`, "trainer_state.json")));
});
