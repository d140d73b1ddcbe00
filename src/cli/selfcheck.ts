// `vlm-grpo selfcheck`: a short engine self-check (the main job until the
// training pipeline lands): versions, threads, BLAS, matmul speed, a tiny
// training run with autograd + AdamW, and a safetensors round trip.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadSafetensors, saveSafetensors } from "../io/safetensors.js";
import { features, getNumThreads, keep, manualSeed, noGrad, randn, tidy, F, liveTensors, cudaDeviceCount } from "../torch/index.js";
import { AdamW } from "../torch/optim/index.js";
import { detectBlas } from "./blas.js";

function check(name: string, ok: boolean, detail: string): boolean {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}: ${detail}`);
  return ok;
}

export function selfcheck(): number {
  let ok = true;
  console.log(`vlm-grpo engine self-check (libtorch ${features.torchVersion}, ${getNumThreads()} threads, CUDA devices: ${cudaDeviceCount()})`);

  const gflops = tidy(() => {
    const a = randn([1024, 1024]);
    const b = randn([1024, 1024]);
    a.matmul(b);
    let best = Infinity;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      a.matmul(b).dispose();
      best = Math.min(best, performance.now() - t0);
    }
    return (2 * 1024 ** 3) / (best / 1000) / 1e9;
  });
  const blas = detectBlas();
  ok = check("matmul", gflops > 1, `${gflops.toFixed(1)} GFLOP/s (fp32 1024^3), BLAS: ${blas.library ?? "unknown"}`) && ok;
  if (blas.reference) {
    console.log("     warning: the reference BLAS is ~30x slower than OpenBLAS; install libopenblas0-pthread");
  }

  // Fit y = x W* + b* with a linear layer; the loss must drop by 100x.
  manualSeed(0);
  const live0 = liveTensors();
  const wTrue = keep(randn([8, 4]));
  const w = keep(tidy(() => randn([4, 8]).mul(0.1)).requiresGrad_(true));
  const b = keep(tidy(() => randn([4]).mul(0)).requiresGrad_(true));
  const opt = new AdamW([w, b], { lr: 0.05, weightDecay: 0 });
  let first = 0;
  let last = 0;
  for (let step = 0; step < 300; step++) {
    last = tidy(() => {
      const x = randn([32, 8]);
      const y = noGrad(() => x.matmul(wTrue).add(1));
      const loss = F.mseLoss(F.linear(x, w, b), y);
      loss.backward();
      opt.step();
      opt.zeroGrad();
      return loss.itemNumber();
    });
    if (step === 0) first = last;
  }
  ok = check("training", last < first / 100, `MSE ${first.toFixed(3)} -> ${last.toExponential(2)} in 300 AdamW steps`) && ok;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-grpo-selfcheck-"));
  try {
    const file = path.join(dir, "model.safetensors");
    saveSafetensors(file, { weight: w, bias: b });
    const loaded = loadSafetensors(file);
    const same = tidy(() => loaded.get("weight")!.eq(w.detach()).all().item() === true && loaded.get("bias")!.eq(b.detach()).all().item() === true);
    for (const t of loaded.values()) t.dispose();
    ok = check("safetensors", same, `round trip of ${fs.statSync(file).size} bytes is bit-exact`) && ok;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  opt.dispose();
  for (const t of [wTrue, w, b]) t.dispose();
  ok = check("memory", liveTensors() === live0, `live tensors after cleanup: ${liveTensors() - live0} leaked`) && ok;
  console.log(ok ? "engine self-check passed" : "engine self-check FAILED");
  return ok ? 0 : 1;
}
