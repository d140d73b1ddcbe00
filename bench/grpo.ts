// `npm run bench:grpo`: one GRPO step (G completions per prompt) of our
// trainer's pieces against a straightforward PyTorch implementation of TRL's
// algorithm (bench/grpo_ref.py), on the same weights, in one run.
//
// One step = for P prompts (one image each): sample G completions of exactly
// L tokens (no EOS id, so none stops early; image placeholder ids suppressed),
// fixed rewards -> group advantages, policy log-probs with autograd over
// prompt + completion, TRL's dapo loss (beta 0; --beta adds the reference
// pass: the base weights with LoRA off), backward, grad-norm clip 1.0, AdamW.
// Ours composes what src/train/grpo.ts runs: generate() with group sharing
// (vision and prompt prefill once per prompt), then per group the image
// features once per prompt and a forward with logitsToKeep C + 1.
// The reference repeats each prompt G times up front, as TRL does, so vision
// and prefill run per completion, and again per row when scoring.
// The two sides alternate step by step (the reference runs as a server in its
// own process), so both see the same load from other processes.
//
// Models: "tiny" is fully fine-tuned (vision tower frozen, as the trainer's
// freezeVision; everything else trained); "smolvlm-256m" trains LoRA rank 16
// (alpha 32, dropout 0) on q,k,v,o,gate,up,down of the decoder, as users would
// on a CPU. With --beta > 0 on tiny, the reference pass runs the policy's own
// weights (there is no adapter to switch off; the trainer refuses that
// combination): it measures the cost, not the semantics. Images are one tile
// of the preset's image size (512 px for 256m, no image splitting); prompts are
// random text ids around the image block.
//
// Flags: --models tiny,smolvlm-256m  --prompts P (1)  --G n (8)  --beta b (0)
//   --length L (per model: tiny 32, 256m 16)  --runs N  --warmup N
//   (per model: tiny 10/2, 256m 2/1)  --text-tokens n (32)  --threads n (libtorch's
//   current count; PyTorch gets the same)  --no-ref  --keep DIR (copy each model's
//   weights, inputs and spec.json to DIR/<model> to rerun grpo_ref.py by hand)  --json
// MFU: see stepFlops() for the formula; the peak is the best fp32 matmul
// GFLOP/s of 1024^3 and 2048^3 through our API, measured in the same run.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { generate } from "../src/generate/generate.js";
import { buildTokenizerFiles, type BuiltTokenizerInfo, FAKE_IMAGE_TOKEN, GLOBAL_IMAGE_TOKEN, IMAGE_TOKEN } from "../src/io/tokenizer_builder.js";
import { saveSafetensors } from "../src/io/safetensors.js";
import { buildModel, type Idefics3Config, Idefics3ForConditionalGeneration, initWeights, presetConfig, presetFiles, type Idefics3PresetName as PresetName, savePretrained } from "../src/models/index.js";
import { adapterParameters, adapterStateDict, applyLora, withAdaptersDisabled } from "../src/nn/lora.js";
import { features, Generator, getNumThreads, keep, noGrad, randint, randn, setNumThreads, tensor, tidy } from "../src/torch/index.js";
import { AdamW, clipGradNorm } from "../src/torch/optim/index.js";
import { collateCompletions } from "../src/policy/collate.js";
import { entropyFromLogits, groupAdvantages, grpoLoss, selectiveLogProbs } from "../src/train/grpo_math.js";
import { findTorchPython } from "./python.js";
import { matmulGflops } from "./matmul.js";

// ---- options -------------------------------------------------------------------

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
function argNumber(name: string): number | undefined {
  const v = argValue(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`bench:grpo: --${name} must be a number, got '${v}'`);
  return n;
}

/** Per-model defaults, chosen so the whole bench stays under ~6 min on 2 cores. */
const DEFAULTS: Record<string, { length: number; runs: number; warmup: number; lora: boolean }> = {
  tiny: { length: 32, runs: 10, warmup: 2, lora: false },
  "smolvlm-256m": { length: 16, runs: 2, warmup: 1, lora: true },
};
const LORA = { rank: 16, alpha: 32, dropout: 0, targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] };
const LR = 1e-5;
const TEMPERATURE = 1;
const MAX_GRAD_NORM = 1;
const EPSILON = 0.2;

const asJson = process.argv.includes("--json");
const withRef = !process.argv.includes("--no-ref");
const modelNames = (argValue("models") ?? "tiny,smolvlm-256m").split(",").map((s) => s.trim()).filter(Boolean);
for (const m of modelNames) if (!DEFAULTS[m]) throw new Error(`bench:grpo: --models: unknown model '${m}'; choose from ${Object.keys(DEFAULTS).join(", ")}`);
const P = argNumber("prompts") ?? 1;
const G = argNumber("G") ?? 8;
const beta = argNumber("beta") ?? 0;
const textTokens = argNumber("text-tokens") ?? 32;
const threadsArg = argNumber("threads");
if (threadsArg !== undefined) setNumThreads(threadsArg);
const threads = getNumThreads();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}


// ---- model FLOPs ---------------------------------------------------------------

interface StepShape {
  cfg: Idefics3Config;
  /** Prompt length (all prompts the same length). */
  tp: number;
  /** Completion length. */
  len: number;
  lora: boolean;
}

/**
 * Model FLOPs of one GRPO step, counting matmuls only (2 per multiply-add):
 *   decoder per token: 2 * (q,k,v,o,gate,up,down weights) + 4 * layers * heads * headDim * S
 *     (scores and weighted values over S keys; a full T x T for a T-token pass, as the
 *     unfused kernels compute it), lm_head 2 * hidden * vocab per kept logit;
 *   LoRA: 2 * r * (in + out) per adapted projection and token;
 *   vision per image: patch conv + encoder layers (linears + 4 * Np^2 * Dv attention) + connector.
 * Generation (no grad): vision and the prompt prefill once per prompt with group sharing
 * (ours), G times per prompt without (the reference); then L - 1 decode passes of P*G rows.
 * Scoring: P*G rows of Tp + L tokens, logits for L + 1 positions; vision once per prompt
 * (ours) or per row (reference). Backward multiplies the forward FLOPs: x3 where weights are
 * trained (full fine-tuning: decoder, lm_head, connector; LoRA adapters), x2 where only input
 * gradients flow (frozen base weights under LoRA, lm_head under LoRA), attention x3, vision x1
 * (frozen, nothing upstream needs gradients). beta > 0 adds one no-grad scoring forward.
 */
function stepFlops(s: StepShape, visionPerRow: boolean): { generation: number; training: number } {
  const t = s.cfg.text;
  const v = s.cfg.vision;
  const h = t.hiddenSize;
  const qo = t.numAttentionHeads * t.headDim;
  const kv = t.numKeyValueHeads * t.headDim;
  const layerLinear = 2 * h * qo + 2 * h * kv + 3 * h * t.intermediateSize;
  const decLinear = t.numHiddenLayers * layerLinear; // weights touched per token
  const loraPerToken = s.lora ? t.numHiddenLayers * 2 * LORA.rank * (h + qo + 2 * (h + kv) + qo + h + 2 * (h + t.intermediateSize) + t.intermediateSize + h) : 0;
  const attnPerQueryKey = 4 * t.numHiddenLayers * t.numAttentionHeads * t.headDim;
  const head = 2 * h * t.vocabSize;
  const np = (v.imageSize / v.patchSize) ** 2;
  const dv = v.hiddenSize;
  const visionTower = 2 * np * 3 * v.patchSize ** 2 * dv + v.numHiddenLayers * (2 * np * (4 * dv * dv + 2 * dv * v.intermediateSize) + 4 * np * np * dv);
  const connector = 2 * (np / s.cfg.scaleFactor ** 2) * dv * s.cfg.scaleFactor ** 2 * h;
  const rows = P * G;
  const images = visionPerRow ? rows : P;
  // Generation.
  const prefillRows = visionPerRow ? rows : P;
  let gen = images * (visionTower + connector) + prefillRows * (s.tp * (2 * decLinear + loraPerToken) + attnPerQueryKey * s.tp * s.tp + head);
  for (let j = 1; j < s.len; j++) gen += rows * (2 * decLinear + loraPerToken + attnPerQueryKey * (s.tp + j) + head);
  // Scoring with autograd, backward.
  const T = s.tp + s.len;
  const fwdLinear = rows * T * 2 * decLinear;
  const fwdLora = rows * T * loraPerToken;
  const fwdAttn = rows * attnPerQueryKey * T * T;
  const fwdHead = rows * (s.len + 1) * head;
  const trainedMul = s.lora ? 2 : 3;
  let train = images * visionTower + images * connector * trainedMul + fwdLinear * trainedMul + fwdLora * 3 + fwdAttn * 3 + fwdHead * trainedMul;
  if (beta > 0) train += images * (visionTower + connector) + fwdLinear + fwdAttn + fwdHead;
  return { generation: gen, training: train };
}

// ---- one model ---------------------------------------------------------------------

interface SideResult {
  ms: number;
  min_ms: number;
  gen_ms?: number;
  train_ms?: number;
  times_ms: number[];
  gflop: number;
  mfu: number;
  /** Trained parameters (a check that both sides train the same set). */
  params_trained: number;
  /** Gradient norm before clipping, last step (a sanity check: finite, same magnitude on both sides). */
  grad_norm: number;
}

interface ModelResult {
  mode: string;
  prompt_tokens: number;
  completion_tokens: number;
  runs: number;
  warmup: number;
  ours: SideResult;
  pytorch: SideResult | null;
  /** PyTorch ms / ours ms (medians). */
  speedup: number | null;
  /** ours ms / PyTorch ms (medians). */
  ours_over_pytorch: number | null;
  /** ours / PyTorch of the fastest steps (less sensitive to other load on the machine). */
  ours_over_pytorch_min: number | null;
}

/** BOS, random text, the image block of one unsplit image (as the Idefics3 processor expands it), random text. */
function promptIds(textTokens: number, imageSeqLen: number, tok: BuiltTokenizerInfo, gen: Generator): number[] {
  // Text ids from the byte range (3..258): never special tokens.
  const text = (n: number) => tidy(() => randint(3, 259, [n], { generator: gen }).toFlatArray().map(Number));
  const ids = tok.specialTokenIds;
  const before = Math.floor(textTokens / 2);
  const image = [ids[FAKE_IMAGE_TOKEN], ids[GLOBAL_IMAGE_TOKEN], ...new Array(imageSeqLen).fill(ids[IMAGE_TOKEN]), ids[FAKE_IMAGE_TOKEN]];
  return [tok.bosTokenId, ...text(before), ...image, ...text(textTokens - before)];
}

interface RefReply {
  gen_ms: number;
  train_ms: number;
  torch: string;
  params_trained: number;
  grad_norm: number;
}

/** bench/grpo_ref.py --serve: one reference step per request. */
class RefServer {
  private readonly lines: AsyncIterator<string>;
  private stderr = "";
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.on("data", (b: Buffer) => (this.stderr += b.toString()));
    this.lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }
  static async start(python: string, script: string, specFile: string): Promise<RefServer> {
    const s = new RefServer(spawn(python, [script, specFile, "--serve"], { stdio: "pipe" }));
    await s.read();
    return s;
  }
  private async read(): Promise<RefReply> {
    const r = await this.lines.next();
    if (r.done) throw new Error(`bench:grpo: ${path.basename(refScript)} ended early (exit ${this.child.exitCode}):\n${this.stderr}`);
    return JSON.parse(r.value) as RefReply;
  }
  async step(): Promise<RefReply> {
    this.child.stdin.write("step\n");
    return this.read();
  }
  close(): void {
    this.child.stdin.end("quit\n");
  }
}

async function benchModel(name: PresetName, gflopsPeak: number, python: string | null): Promise<ModelResult> {
  const d = DEFAULTS[name];
  const len = argNumber("length") ?? d.length;
  const runs = argNumber("runs") ?? d.runs;
  const warmup = argNumber("warmup") ?? d.warmup;
  const files = presetFiles(name);
  const tok = buildTokenizerFiles(files.padVocabTo !== undefined ? { vocabSize: files.padVocabTo } : {}).info;
  const cfg = presetConfig("idefics3", name, { ...tok, imageTokenId: tok.specialTokenIds[IMAGE_TOKEN] }) as Idefics3Config;
  const model = buildModel(cfg) as Idefics3ForConditionalGeneration;
  initWeights(model, cfg.text.initializerRange, 0);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vlm-grpo-bench-${name}-`));
  try {
    await savePretrained(model, dir);
    if (d.lora) {
      applyLora(model, { rank: LORA.rank, alpha: LORA.alpha, dropout: LORA.dropout, targetModules: LORA.targets, seed: 0 });
      saveSafetensors(path.join(dir, "adapter.safetensors"), adapterStateDict(model));
    } else {
      model.requiresGrad_(true);
      model.model.vision_model.requiresGrad_(false);
    }
    const trainable = d.lora ? adapterParameters(model) : model.parameters().filter((p) => p.requiresGrad);
    const paramsTrained = trainable.reduce((s, p) => s + p.numel, 0);
    const opt = new AdamW(trainable, { lr: LR, weightDecay: 0 });

    // Inputs: P prompts of one image each, same length (no padding).
    const gen = new Generator(1);
    const ids = tok.specialTokenIds;
    const prompts = Array.from({ length: P }, () => promptIds(textTokens, cfg.imageSeqLen, tok, gen));
    const tp = prompts[0].length;
    const batch = tidy(() => ({
      inputIds: keep(tensor(prompts.flat(), { dtype: "int64" }).view(P, tp)),
      attentionMask: keep(tensor(new Array(P * tp).fill(1), { dtype: "int64" }).view(P, tp)),
      pixelValues: keep(randn([P, 3, cfg.vision.imageSize, cfg.vision.imageSize], { generator: gen })),
      imagesPerPrompt: new Array(P).fill(1),
      promptLengths: new Array(P).fill(tp),
    }));
    saveSafetensors(path.join(dir, "inputs.safetensors"), { input_ids: batch.inputIds, attention_mask: batch.attentionMask, pixel_values: batch.pixelValues });
    const perPromptImages = Array.from({ length: P }, (_, i) => ({ pixelValues: keep(batch.pixelValues.narrow(0, i, 1)) }));
    const suppress = [ids[IMAGE_TOKEN], ids[FAKE_IMAGE_TOKEN], ids[GLOBAL_IMAGE_TOKEN]];
    // A fixed reward vector (reward code is not measured): alternating 1, 0, 0.5, ...
    const rewards = Array.from({ length: P * G }, (_, i) => [1, 0, 0.5, 0.25][i % 4]);
    const advantages = groupAdvantages(rewards, G, "group").advantages;
    const sampler = new Generator(2);

    /** Per-token log-probs of one group's completions (src/train/grpo.ts completionLogProbs). */
    const groupLogProbs = (gi: number, comps: { promptIndex: number; tokenIds: number[] }[], withEntropy: boolean) =>
      tidy(() => {
        const c = collateCompletions(batch, comps, tok.padTokenId);
        const feats = model.encodeImages(batch.pixelValues.narrow(0, gi, 1)); // once per prompt
        const imageFeatures = feats.indexSelect(0, tensor(new Array(comps.length).fill(0), { dtype: "int64" })); // one copy per row
        const C = c.completionLength;
        const logits = model.forward({ inputIds: c.inputIds, attentionMask: c.attentionMask, imageFeatures, logitsToKeep: C + 1 }).logits;
        const scaled = logits.narrow(1, 0, C).div(TEMPERATURE);
        const logProbs = selectiveLogProbs(scaled, c.completionIds);
        if (withEntropy) noGrad(() => entropyFromLogits(scaled.detach()).mul(c.completionMask.float()).sum().item());
        return { logProbs, mask: c.completionMask };
      });

    let lastGradNorm = NaN;
    const step = (): { gen: number; train: number } => {
      const t0 = performance.now();
      model.eval();
      const out = generate(
        model,
        { inputIds: batch.inputIds, attentionMask: batch.attentionMask, images: perPromptImages },
        { numReturnSequences: G, maxNewTokens: len, temperature: TEMPERATURE, eosTokenIds: [], padTokenId: tok.padTokenId, generator: sampler, shareGroup: true, suppressTokenIds: suppress },
      );
      model.train();
      const t1 = performance.now();
      const comps = out.completions;
      const totalTokens = comps.reduce((s, c) => s + c.tokenIds.length, 0);
      for (let gi = 0; gi < P; gi++) {
        const rows = Array.from({ length: G }, (_, k) => gi * G + k);
        const group = rows.map((r) => comps[r]).map((c) => ({ ...c, promptIndex: gi }));
        tidy(() => {
          const ref = beta > 0 ? noGrad(() => withAdaptersDisabled(model, () => groupLogProbs(gi, group, false).logProbs)) : null;
          const { logProbs, mask } = groupLogProbs(gi, group, true);
          const { loss } = grpoLoss({
            logProbs,
            refLogProbs: ref,
            advantages: rows.map((r) => advantages[r]),
            completionMask: mask,
            epsilonLow: EPSILON,
            epsilonHigh: EPSILON,
            beta,
            lossType: "dapo",
            numItemsInBatch: totalTokens,
            gradientAccumulationSteps: P,
          });
          loss.backward();
        });
      }
      lastGradNorm = clipGradNorm(trainable, MAX_GRAD_NORM);
      opt.step();
      opt.zeroGrad();
      return { gen: t1 - t0, train: performance.now() - t1 };
    };

    // The reference runs as a server in its own process, one step per request,
    // and steps alternate (ours, PyTorch, PyTorch, ours, ...): both sides see the
    // same load from other processes on a shared machine.
    let ref: RefServer | null = null;
    if (python) {
      const spec = { threads, G, length: len, runs, warmup, beta, lora: d.lora ? LORA : null, lr: LR, temperature: TEMPERATURE, max_grad_norm: MAX_GRAD_NORM, epsilon: EPSILON, rewards, suppress, pad_token_id: tok.padTokenId };
      const specFile = path.join(dir, "spec.json");
      fs.writeFileSync(specFile, JSON.stringify(spec));
      const keepDir = argValue("keep");
      if (keepDir) fs.cpSync(dir, path.join(keepDir, name), { recursive: true });
      ref = await RefServer.start(python, refScript, specFile);
    }
    const oursT = { gen: [] as number[], train: [] as number[] };
    const refT = { gen: [] as number[], train: [] as number[] };
    let refInfo: RefReply | null = null;
    try {
      for (let i = 0; i < warmup + runs; i++) {
        const runOurs = async () => {
          await new Promise((resolve) => setImmediate(resolve));
          const r = step();
          if (i >= warmup) (oursT.gen.push(r.gen), oursT.train.push(r.train));
        };
        const runRef = async () => {
          if (!ref) return;
          refInfo = await ref.step();
          if (i >= warmup) (refT.gen.push(refInfo.gen_ms), refT.train.push(refInfo.train_ms));
        };
        if (i % 2 === 0) (await runOurs(), await runRef());
        else (await runRef(), await runOurs());
      }
    } finally {
      ref?.close();
    }
    const shape: StepShape = { cfg, tp, len, lora: d.lora };
    const side = (t: { gen: number[]; train: number[] }, visionPerRow: boolean, paramsTrained: number, gradNorm: number): SideResult => {
      const totals = t.gen.map((g, k) => g + t.train[k]);
      const fl = stepFlops(shape, visionPerRow);
      const gflop = (fl.generation + fl.training) / 1e9;
      const ms = median(totals);
      return { ms, min_ms: Math.min(...totals), gen_ms: median(t.gen), train_ms: median(t.train), times_ms: totals, gflop, mfu: gflop / (ms / 1000) / gflopsPeak, params_trained: paramsTrained, grad_norm: gradNorm };
    };
    const ours = side(oursT, false, paramsTrained, lastGradNorm);
    const info = refInfo as RefReply | null;
    const pytorch = info ? side(refT, true, info.params_trained, info.grad_norm) : null;
    if (info) pytorchVersion = info.torch;
    for (const t of [batch.inputIds, batch.attentionMask, batch.pixelValues, ...perPromptImages.map((x) => x.pixelValues)]) t.dispose();
    opt.dispose();
    model.dispose();
    return {
      mode: d.lora ? `LoRA r${LORA.rank} (q,k,v,o,gate,up,down)` : "full fine-tuning (vision tower frozen)",
      prompt_tokens: tp,
      completion_tokens: len,
      runs,
      warmup,
      ours,
      pytorch,
      speedup: pytorch ? pytorch.ms / ours.ms : null,
      ours_over_pytorch: pytorch ? ours.ms / pytorch.ms : null,
      ours_over_pytorch_min: pytorch ? ours.min_ms / pytorch.min_ms : null,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- main ------------------------------------------------------------------------------

const here = path.dirname(fileURLToPath(import.meta.url));
const refScript = path.resolve(here, "../../bench/grpo_ref.py");

console.log(`libtorch ${features.torchVersion}, ${threads} intra-op thread(s); GRPO step: ${P} prompt(s) x G=${G}, beta ${beta}, loss dapo`);
const peak = Math.max(matmulGflops(1024, 10), matmulGflops(2048, 3));
console.log(`fp32 matmul peak: ${peak.toFixed(1)} GFLOP/s (best of 1024^3 and 2048^3)`);
const python = withRef ? findTorchPython() : null;
if (withRef && !python) console.log("no Python with torch found (set PYTHON, or on Debian: apt-get install python3-torch); PyTorch side skipped");
const results: Record<string, ModelResult> = {};
let pytorchVersion: string | null = null;
for (const name of modelNames) {
  const r = await benchModel(name as PresetName, peak, python);
  results[name] = r;
  const f = (x: number) => x.toFixed(1);
  const line = (s: SideResult) =>
    `${f(s.ms)} ms/step (generation ${f(s.gen_ms!)} + scoring/backward/step ${f(s.train_ms!)}), min ${f(s.min_ms)}; ` +
    `${f(s.gflop)} GFLOP, MFU ${(s.mfu * 100).toFixed(1)}%; ${s.params_trained} trained params, grad norm ${s.grad_norm.toPrecision(4)}`;
  console.log(`${name}: ${r.mode}; prompt ${r.prompt_tokens} tokens (1 image), ${G} completions x ${r.completion_tokens} tokens; median of ${r.runs} steps after ${r.warmup} warm-up`);
  console.log(`  ours:    ${line(r.ours)}`);
  if (r.pytorch) {
    console.log(`  PyTorch: ${line(r.pytorch)}`);
    console.log(`  speedup PyTorch/ours ${r.speedup!.toFixed(2)}x; ours/PyTorch ${r.ours_over_pytorch!.toFixed(3)} (of the fastest steps: ${r.ours_over_pytorch_min!.toFixed(3)})`);
  }
}
if (pytorchVersion) console.log(`PyTorch ${pytorchVersion} (${python}), ${threads} thread(s)`);
if (asJson) {
  const round = (x: number, k = 2) => Number(x.toFixed(k));
  const ratio = (x: number | null) => (x === null ? null : round(x, 4));
  const side = (s: SideResult | null) =>
    s && { ...s, ms: round(s.ms), min_ms: round(s.min_ms), gen_ms: round(s.gen_ms!), train_ms: round(s.train_ms!), gflop: round(s.gflop), mfu: round(s.mfu, 4), grad_norm: round(s.grad_norm, 6), times_ms: s.times_ms.map((x) => round(x, 1)) };
  const models = Object.fromEntries(
    Object.entries(results).map(([k, r]) => [
      k,
      { ...r, ours: side(r.ours), pytorch: side(r.pytorch), speedup: ratio(r.speedup), ours_over_pytorch: ratio(r.ours_over_pytorch), ours_over_pytorch_min: ratio(r.ours_over_pytorch_min) },
    ]),
  );
  console.log(JSON.stringify({ models, matmul_gflops: round(peak, 1), prompts: P, G, beta, threads, libtorch: features.torchVersion, pytorch: pytorchVersion }));
}
