// `npm run bench:grpo`: one GRPO step of ours against one step of TRL's
// GRPOTrainer (the real peer, bench/trl_grpo.py in the peer venv of
// scripts/setup-peers.sh), same model folder, same initial LoRA adapter, same
// prompt and image, G, completion length, loss and optimizer, same thread
// count, steps alternating between the sides (TRL's training loop waits in a
// callback for each step), in one run.
//
// A step: 1 prompt with one image; sample G completions of exactly L tokens
// (no EOS; image placeholder ids suppressed); fixed rewards (1, 0, 0.5, 0.25,
// ...) -> group advantages; per-token log-probs with autograd over prompt +
// completion (logits for the last L + 1 positions / temperature, selective
// log-softmax, entropy without grad); the dapo loss with beta 0 and
// num_iterations 1; backward; grad-norm clip 1.0; AdamW (lr 1e-5, no weight
// decay, constant). LoRA r16, alpha 32, dropout 0 on q,k,v,o,gate,up,down of
// the decoder (ours' applyLora, saved with saveAdapter; TRL trains the same
// adapter loaded with PeftModel.from_pretrained(is_trainable=True)).
//
// Ours = the pieces src/train/grpo.ts runs: generate() with group sharing
// (vision and prompt prefill once for the G completions, the prompt's KV
// cache repeated), then the image features once and one forward over the G
// prompt + completion rows (completionLogProbs), grpoLoss, backward,
// clipGradNorm, AdamW. Phases: generation, forward (scoring + loss),
// backward, optimizer (clip + step + zero_grad).
// TRL = trainer.train() unchanged but for GRPOConfig settings that make it do
// the same work (see bench/trl_grpo.py: gradient checkpointing off, fp32,
// min_new_tokens = L, suppress_tokens); it repeats the prompt G times, so the
// vision tower and prefill run G times when sampling and the vision tower G
// times again when scoring. Phases: generation (transformers' generate),
// prepare (generation + rewards + advantages + TRL's bookkeeping), forward,
// backward, optimizer.
// Check: the prompt ids TRL built equal those ours uses (both from the
// processor's chat template), both sides train the same parameter count, and
// both produce G completions of L tokens; grad norms are printed (different
// samples, so equal only in magnitude).
//
// Models as bench:generate (--model smolvlm-256m | qwen2.5-vl-3b; the 3B is cut
// to 4 decoder layers and 4 vision blocks by default, said in the output).
// MFU: bench/flops.ts (generationFlops + scoringFlops), each side charged its
// own work, against the fp32 matmul peak measured through our API.
//
// Flags: --model (smolvlm-256m)  --G n (8)  --length L (16)  --runs N  --warmup N (1)
//   --lora r (16)  --text-layers n  --vision-layers n  --image WxH  --threads n
//   --seed s (0)  --json
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { generate } from "../src/generate/index.js";
import { catImageGrids, saveAdapter } from "../src/models/index.js";
import { collateCompletions } from "../src/policy/collate.js";
import { loadPolicy, type Policy } from "../src/policy/policy.js";
import { features, Generator, getNumThreads, noGrad, setNumThreads, tensor, tidy } from "../src/torch/index.js";
import { AdamW, clipGradNorm } from "../src/torch/optim/index.js";
import { entropyFromLogits, groupAdvantages, grpoLoss, selectiveLogProbs } from "../src/train/grpo_math.js";
import { generationFlops, imagePatches, modelShape, scoringFlops } from "./flops.js";
import { matmulGflops } from "./matmul.js";
import { benchModelFields, cutNote, readPeerInputs, writeBenchModel } from "./model_folder.js";
import { PeerServer, peerUnavailable } from "./peers.js";
import { argInt, argValue, imageSize, loadavg, median, type ModelChoice, MODELS, spread } from "./options.js";

const modelName = (argValue("model") ?? "smolvlm-256m") as ModelChoice;
const M = MODELS[modelName];
if (!M) throw new Error(`bench:grpo: --model must be one of ${Object.keys(MODELS).join(", ")}, got '${modelName}'`);
const G = Math.max(1, argInt("G", 8));
const L = Math.max(1, argInt("length", 16));
const runs = Math.max(1, argInt("runs", M.grpoRuns));
const warmup = argInt("warmup", 1);
const loraRank = Math.max(1, argInt("lora", 16));
const textLayers = argInt("text-layers", M.textLayers ?? 0) || undefined;
const visionLayers = argInt("vision-layers", M.visionLayers ?? 0) || undefined;
const [imgW, imgH] = imageSize(argValue("image") ?? M.image);
const seed = argInt("seed", 0);
const asJson = process.argv.includes("--json");
if (argValue("threads") !== undefined) setNumThreads(argInt("threads", 1));
const threads = getNumThreads();
const LR = 1e-5;
const TEMPERATURE = 1;
const EPSILON = 0.2;
const MAX_GRAD_NORM = 1;
const log = (s: string) => console.log(s);

const PHASES = ["generation", "forward", "backward", "optimizer"] as const;
type Phase = (typeof PHASES)[number];
interface StepTimes {
  ms: number;
  phases: Record<Phase, number>;
}

log(`libtorch ${features.torchVersion}, ${threads} intra-op thread(s); load average ${loadavg()}`);
const peak = Math.max(matmulGflops(1024, 10), matmulGflops(2048, 3));
log(`fp32 matmul peak through our API: ${peak.toFixed(1)} GFLOP/s (best of 1024^3 and 2048^3)`);
const why = peerUnavailable();
if (why) throw new Error(`bench:grpo needs the TRL peer: ${why}`);
const tSetup = performance.now();
const bm = await writeBenchModel({ arch: M.arch, preset: M.preset, textLayers, visionLayers, seed });
const work = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-grpo-bench-grpo-"));
let peer: PeerServer | null = null;
let policy: Policy | null = null;
try {
  policy = await loadPolicy({ modelDir: bm.dir, prompt: {}, training: { lora: { rank: loraRank, alpha: 2 * loraRank, dropout: 0, seed } } });
  const model = policy.model;
  const adapterDir = path.join(work, "adapter");
  saveAdapter(model, adapterDir);
  const trainable = policy.trainable;
  const paramsTrained = trainable.reduce((s, p) => s + p.numel, 0);
  const opt = new AdamW(trainable, { lr: LR, weightDecay: 0 });
  const suppress = [...policy.encoder.suppressTokenIds];
  const rewards = Array.from({ length: G }, (_, i) => [1, 0, 0.5, 0.25][i % 4]);
  const advantages = Array.from(groupAdvantages(rewards, G, "group").advantages);

  const spec = {
    model_dir: bm.dir, work, adapter_dir: adapterDir, threads, G, L, steps: warmup + runs, lr: LR, epsilon: EPSILON, beta: 0,
    temperature: TEMPERATURE, max_grad_norm: MAX_GRAD_NORM, rewards, suppress, image: [imgW, imgH], seed,
  };
  const specFile = path.join(work, "spec.json");
  fs.writeFileSync(specFile, JSON.stringify(spec));
  peer = await PeerServer.start("trl_grpo.py", [specFile], threads);
  const info = peer.info;

  // The processor's prompt and image (written by the peer), in our layout.
  const { tensors: inp, inputIds, attentionMask, image } = readPeerInputs(work);
  const promptIds = inputIds.toFlatArray().map(Number);
  const imageTokens = promptIds.filter((x) => x === model.imageTokenId).length;
  const patches = imagePatches(bm.config, image);
  const cut = cutNote(bm, textLayers, visionLayers);
  log(
    `model ${modelName} (${M.arch}, preset ${M.preset})${cut}: ${(bm.numParameters / 1e6).toFixed(1)}M parameters, random (seed ${seed}); ` +
      `LoRA r${loraRank} alpha ${2 * loraRank} on q,k,v,o,gate,up,down (${paramsTrained} trained parameters; TRL: ${info.params_trained}); ` +
      `prompt ${promptIds.length} tokens with one ${imgW}x${imgH} image (${patches} patches, ${imageTokens} image tokens); G=${G}, L=${L}; setup ${((performance.now() - tSetup) / 1000).toFixed(1)} s`,
  );
  log(`peer: torch ${info.torch}, transformers ${info.transformers}, trl ${info.trl}, peft ${info.peft}, ${info.threads} thread(s), attention ${info.attn}`);
  if (info.params_trained !== paramsTrained) throw new Error(`bench:grpo: ours trains ${paramsTrained} parameters, TRL ${info.params_trained}`);

  const sampler = new Generator(seed + 2);
  let gradNorm = Number.NaN;
  const oursStep = (): StepTimes => {
    const t0 = performance.now();
    model.eval();
    const out = generate(
      model,
      { inputIds, attentionMask, images: [image] },
      { numReturnSequences: G, maxNewTokens: L, temperature: TEMPERATURE, eosTokenIds: [], padTokenId: policy!.padTokenId, generator: sampler, shareGroup: true, suppressTokenIds: suppress },
    );
    model.train();
    const t1 = performance.now();
    const comps = out.completions.map((c) => ({ promptIndex: 0, tokenIds: c.tokenIds }));
    if (comps.some((c) => c.tokenIds.length !== L)) throw new Error("bench:grpo: ours made a completion shorter than L");
    let t2 = 0;
    tidy(() => {
      // src/train/grpo.ts completionLogProbs: features once, repeated per completion row.
      const c = collateCompletions({ inputIds, attentionMask }, comps, policy!.padTokenId);
      const feats = model.encodeImageTokens(image);
      const perRow = Array.from({ length: G * imageTokens }, (_, k) => k % imageTokens);
      const imageFeatures = feats.indexSelect(0, tensor(perRow, { dtype: "int64" }));
      const imageGridThw = catImageGrids(new Array(G).fill(image));
      const C = c.completionLength;
      const logits = model.forward({ inputIds: c.inputIds, attentionMask: c.attentionMask, imageFeatures, imageGridThw, logitsToKeep: C + 1 }).logits;
      const scaled = logits.narrow(1, 0, C).div(TEMPERATURE);
      const logProbs = selectiveLogProbs(scaled, c.completionIds);
      noGrad(() => entropyFromLogits(scaled.detach()).mul(c.completionMask.float()).sum().item());
      const { loss } = grpoLoss({ logProbs, refLogProbs: null, advantages, completionMask: c.completionMask, epsilonLow: EPSILON, epsilonHigh: EPSILON, beta: 0, lossType: "dapo", numItemsInBatch: G * L });
      loss.item();
      t2 = performance.now();
      loss.backward();
    });
    const t3 = performance.now();
    gradNorm = clipGradNorm(trainable, MAX_GRAD_NORM);
    opt.step();
    opt.zeroGrad();
    const t4 = performance.now();
    return { ms: t4 - t0, phases: { generation: t1 - t0, forward: t2 - t1, backward: t3 - t2, optimizer: t4 - t3 } };
  };

  const ours: StepTimes[] = [];
  const trl: (StepTimes & { prepare: number; vision: number; gradNorm: number })[] = [];
  let trlGradNorm = Number.NaN;
  let promptCheck = "";
  for (let i = 0; i < warmup + runs; i++) {
    const runOurs = async () => {
      await new Promise((resolve) => setImmediate(resolve));
      const r = oursStep();
      if (i >= warmup) ours.push(r);
      return `ours ${(r.ms / 1000).toFixed(2)} s`;
    };
    const runTrl = async () => {
      const r = await peer!.ask({ cmd: "step" });
      const lengths = r.completion_lengths as number[];
      if (lengths.length !== G || lengths.some((n) => n !== L)) throw new Error(`bench:grpo: TRL's completions have lengths ${lengths}`);
      if (r.prompt_ids) {
        const theirs = r.prompt_ids as number[][];
        if (theirs.some((p) => JSON.stringify(p) !== JSON.stringify(promptIds))) throw new Error(`bench:grpo: TRL's prompt ids differ from ours:\n  TRL  ${theirs[0].join(" ")}\n  ours ${promptIds.join(" ")}`);
        promptCheck = `prompt check: TRL's ${theirs.length} prompt rows are all ours' ${promptIds.length} ids`;
      }
      trlGradNorm = r.grad_norm as number;
      const n = (k: string) => r[k] as number;
      const s = { ms: n("ms"), phases: { generation: n("generation_ms"), forward: n("forward_ms"), backward: n("backward_ms"), optimizer: n("optimizer_ms") }, prepare: n("prepare_ms"), vision: n("vision_ms"), gradNorm: n("grad_norm") };
      if (i >= warmup) trl.push(s);
      return `TRL ${(s.ms / 1000).toFixed(2)} s`;
    };
    const parts = i % 2 === 0 ? [await runOurs(), await runTrl()] : [await runTrl(), await runOurs()];
    log(`  ${i < warmup ? "warm-up" : `step ${i - warmup + 1}/${runs}`}: ${parts.join(", ")}; load ${loadavg()}`);
  }
  for (const t of inp.values()) t.dispose();
  opt.dispose();

  // ---- report ------------------------------------------------------------------------------
  const shape = modelShape(bm.config);
  const w = { promptTokens: promptIds.length, patches, G, L, loraRank };
  const gflop = (shared: boolean) => {
    const s = scoringFlops(shape, { ...w, shared });
    return { generation: generationFlops(shape, { ...w, shared }) / 1e9, forward: s.forward / 1e9, backward: s.backward / 1e9 };
  };
  const fl = { ours: gflop(true), trl: gflop(false) };
  const total = (x: { generation: number; forward: number; backward: number }) => x.generation + x.forward + x.backward;
  const med = (xs: StepTimes[], p?: Phase) => median(xs.map((x) => (p ? x.phases[p] : x.ms)));
  const mfu = (gf: number, ms: number) => gf / (ms / 1000) / peak;
  const f = (x: number, k = 1) => x.toFixed(k);
  log(`results (median of ${runs} steps after ${warmup} warm-up; MFU vs ${f(peak)} GFLOP/s):`);
  for (const [name, xs, g] of [["ours", ours, fl.ours], ["TRL", trl, fl.trl]] as const) {
    const phases = PHASES.map((p) => `${p} ${f(med(xs, p))}`).join(" + ");
    log(`  ${name.padEnd(4)} ${spread(xs.map((x) => x.ms))}; phases (ms) ${phases}; ${f(total(g))} GFLOP, MFU ${f(mfu(total(g), med(xs)) * 100)}% (generation ${f(mfu(g.generation, med(xs, "generation")) * 100)}%, forward+backward ${f(mfu(g.forward + g.backward, med(xs, "forward") + med(xs, "backward")) * 100)}%)`);
  }
  log(`  TRL prepare (generation + rewards + advantages + bookkeeping) ${f(median(trl.map((x) => x.prepare)))} ms; vision tower ${f(median(trl.map((x) => x.vision)))} ms per step (${2 * G} passes)`);
  const ratio = med(trl) / med(ours);
  const ratioMin = Math.min(...trl.map((x) => x.ms)) / Math.min(...ours.map((x) => x.ms));
  log(`  step time TRL / ours ${f(ratio, 2)}x (fastest steps ${f(ratioMin, 2)}x); per phase: ${PHASES.map((p) => `${p} ${f(med(trl, p) / med(ours, p), 2)}x`).join(", ")}`);
  log(`  ${promptCheck}; grad norm before clipping, last step: ours ${gradNorm.toPrecision(4)}, TRL ${trlGradNorm.toPrecision(4)}`);
  if (asJson) {
    const r = (x: number, k = 3) => Number(x.toFixed(k));
    const side = (xs: StepTimes[], g: typeof fl.ours) => ({
      ms: r(med(xs), 1),
      steps_ms: xs.map((x) => r(x.ms, 1)),
      phases_ms: Object.fromEntries(PHASES.map((p) => [p, r(med(xs, p), 1)])),
      gflop: r(total(g), 1),
      mfu: r(mfu(total(g), med(xs)), 4),
    });
    console.log(
      JSON.stringify({
        ...benchModelFields(bm, { name: modelName, arch: M.arch, preset: M.preset, textLayers, visionLayers, loraRank }),
        params_trained: paramsTrained,
        prompt_tokens: promptIds.length,
        image_tokens: imageTokens,
        G,
        L,
        runs,
        warmup,
        threads,
        matmul_gflops: r(peak, 1),
        ours: side(ours, fl.ours),
        trl: { ...side(trl, fl.trl), prepare_ms: r(median(trl.map((x) => x.prepare)), 1), vision_ms: r(median(trl.map((x) => x.vision)), 1) },
        ratio_trl_over_ours: r(ratio),
        ratio_fastest: r(ratioMin),
        grad_norm: { ours: r(gradNorm, 5), trl: r(trlGradNorm, 5) },
        libtorch: features.torchVersion,
        peer: info,
      }),
    );
  }
} finally {
  await peer?.close();
  policy?.dispose();
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(bm.dir, { recursive: true, force: true });
}
