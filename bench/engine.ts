// `npm run bench:engine`: the tensor engine against PyTorch, in one run.
//   (a) fp32 matmul GFLOP/s through our API;
//   (b) forward + backward + AdamW step of Llama-style decoder blocks at
//       SmolLM2-135M's shapes through our API;
//   (c) the same step in Python PyTorch (when an interpreter imports torch)
//       with the same thread count, and the ratio ours / PyTorch.
// Flags: --json (last line is one JSON object), --layers N, --steps N, --warmup N,
// --rounds N (default 1): alternate ours and PyTorch N times and pool the
// timed steps of each side, so that a change in machine load between the two
// measurements (other processes on a shared machine) biases neither side.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { getNumThreads, keep, liveTensors, manualSeed, randn, features, parallelInfo, tidy } from "../src/torch/index.js";
import { AdamW } from "../src/torch/optim/index.js";
import { LlamaStack, SMOLLM2_135M_BLOCK } from "./llama_stack.js";
import { findTorchPython, runPythonJson } from "./python.js";
import { matmulGflops } from "./matmul.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const asJson = process.argv.includes("--json");
const layers = arg("layers", SMOLLM2_135M_BLOCK.layers);
const steps = arg("steps", 5);
const warmup = arg("warmup", 2);
const rounds = arg("rounds", 1);
const threads = getNumThreads();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];


/** Model FLOPs of one fwd+bwd step (3x forward), counting matmuls only. */
function stepFlops(): number {
  const s = { ...SMOLLM2_135M_BLOCK, layers };
  const d = s.hidden / s.heads;
  const tokens = s.batch * s.seq;
  const linearParams = s.hidden * s.hidden * 2 + s.hidden * s.kvHeads * d * 2 + 3 * s.hidden * s.mlp;
  const attn = 2 * 2 * s.batch * s.heads * s.seq * s.seq * d;
  return 3 * s.layers * (2 * tokens * linearParams + attn);
}

/** Timed steps of ours (after `warmup` untimed ones), and memory growth over the timed steps. */
async function benchOurs(): Promise<{ times: number[]; rssGrowthMb: number; liveGrowth: number }> {
  manualSeed(0);
  const model = new LlamaStack({ ...SMOLLM2_135M_BLOCK, layers });
  const params = model.parameters();
  const opt = new AdamW(params, { lr: 1e-4, weightDecay: 0.01 });
  const x = keep(randn([SMOLLM2_135M_BLOCK.batch, SMOLLM2_135M_BLOCK.seq, SMOLLM2_135M_BLOCK.hidden]));
  const times: number[] = [];
  let rss0 = 0;
  let live0 = 0;
  for (let i = 0; i < warmup + steps; i++) {
    // Between steps, let the event loop run (as a training loop does): the
    // addon's handle finalizers run from it.
    await new Promise((resolve) => setImmediate(resolve));
    if (i === warmup) {
      rss0 = process.memoryUsage().rss;
      live0 = liveTensors();
    }
    const t0 = performance.now();
    tidy(() => {
      const loss = model.loss(x);
      loss.backward();
      opt.step();
      opt.zeroGrad();
    });
    const dt = performance.now() - t0;
    if (i >= warmup) times.push(dt);
  }
  const rssGrowthMb = (process.memoryUsage().rss - rss0) / 2 ** 20;
  const liveGrowth = liveTensors() - live0;
  opt.dispose();
  model.dispose();
  x.dispose();
  return { times, rssGrowthMb, liveGrowth };
}

const here = path.dirname(fileURLToPath(import.meta.url));
const refScript = path.resolve(here, "../../bench/engine_ref.py");

console.log(`libtorch ${features.torchVersion}, ${threads} intra-op thread(s)`);
if (!asJson) console.log(parallelInfo().split("\n").filter((l) => /BLAS|MKL|backend|OpenMP/i.test(l)).join("\n"));
const gflops = Math.max(matmulGflops(1024, 10), matmulGflops(2048, 3));
console.log(`(a) fp32 matmul: ${gflops.toFixed(1)} GFLOP/s (best of 1024^3 and 2048^3)`);
const flops = stepFlops();
const python = findTorchPython();
const oursTimes: number[] = [];
const refTimes: number[] = [];
let rssGrowthMb = 0;
let liveGrowth = 0;
let refInfo: Record<string, unknown> = {};
for (let r = 0; r < rounds; r++) {
  const ours = await benchOurs();
  oursTimes.push(...ours.times);
  // Memory growth is reported for the first round (a fresh process, as a training run starts).
  if (r === 0) {
    rssGrowthMb = ours.rssGrowthMb;
    liveGrowth = ours.liveGrowth;
  }
  if (python) {
    const ref = runPythonJson(python, refScript, [String(threads), String(layers), String(steps), String(warmup)]) as unknown as { times_ms: number[]; torch: string; threads: number };
    refTimes.push(...ref.times_ms);
    refInfo = ref;
  }
  if (rounds > 1) {
    const last = (xs: number[]) => median(xs.slice(-steps)).toFixed(1);
    console.log(`    round ${r + 1}/${rounds}: ours median ${last(oursTimes)} ms${python ? `, PyTorch median ${last(refTimes)} ms` : ""}`);
  }
}
const oursMs = median(oursTimes);
const oursMin = Math.min(...oursTimes);
console.log(
  `(b) ours: ${layers} Llama blocks (hidden 576, 9/3 heads, MLP 1536, seq 256, batch 4) fwd+bwd+AdamW: ` +
    `median ${oursMs.toFixed(1)} ms (min ${oursMin.toFixed(1)}) over ${oursTimes.length} steps, ${(flops / (oursMs / 1000) / 1e9).toFixed(1)} GFLOP/s, ` +
    `MFU ${((flops / (oursMs / 1000) / 1e9 / gflops) * 100).toFixed(0)}% of measured matmul peak`,
);
console.log(`    memory over ${steps} timed steps: RSS ${rssGrowthMb.toFixed(1)} MB, live tensors ${liveGrowth >= 0 ? "+" : ""}${liveGrowth}`);
let pytorchMs: number | null = null;
let pytorchMin: number | null = null;
if (python) {
  pytorchMs = median(refTimes);
  pytorchMin = Math.min(...refTimes);
  console.log(`(c) PyTorch ${refInfo.torch} (${python}, ${refInfo.threads} threads): median ${pytorchMs.toFixed(1)} ms (min ${pytorchMin.toFixed(1)}) over ${refTimes.length} steps`);
  console.log(`    ratio ours/PyTorch: ${(oursMs / pytorchMs).toFixed(3)} (target <= 1.10); of the minimums: ${(oursMin / pytorchMin).toFixed(3)}`);
} else {
  console.log("(c) no Python with torch found (set PYTHON, or on Debian: apt-get install python3-torch); ratio skipped");
}
if (asJson) {
  console.log(
    JSON.stringify({
      matmul_gflops: Number(gflops.toFixed(1)),
      ours_ms: Number(oursMs.toFixed(2)),
      pytorch_ms: pytorchMs === null ? null : Number(pytorchMs.toFixed(2)),
      ratio: pytorchMs === null ? null : Number((oursMs / pytorchMs).toFixed(4)),
      ours_min_ms: Number(oursMin.toFixed(2)),
      pytorch_min_ms: pytorchMin === null ? null : Number(pytorchMin.toFixed(2)),
      ratio_min: pytorchMin === null ? null : Number((oursMin / pytorchMin).toFixed(4)),
      rss_growth_mb: Number(rssGrowthMb.toFixed(2)),
      live_tensor_growth: liveGrowth,
      layers,
      threads,
      steps,
      rounds,
      step_gflop: Number((flops / 1e9).toFixed(2)),
      libtorch: features.torchVersion,
    }),
  );
}
