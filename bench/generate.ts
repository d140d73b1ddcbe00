// `npm run bench:generate`: sampling G completions (default 8) of L tokens
// (default 32) for one image prompt, with the smolvlm-256m-shaped Idefics3 and
// random weights, three ways in one run:
//   ours, shared     generate() with shareGroup: vision tower and prompt prefill
//                    once, the prompt's KV cache repeated G times;
//   ours, unshared   generate() with shareGroup false: prompt and image repeated
//                    G times up front, everything recomputed per completion;
//   PyTorch          bench/generate_ref.py, a straightforward HF-style loop (prompt
//                    and image repeated G times, vision per completion, a KV cache
//                    grown by torch.cat, eager repeat_kv attention, multinomial),
//                    on the same weights (saved once to a temporary folder) and the
//                    same thread count.
// tokens/s = G * L / seconds of one whole generate call (vision and prefill included).
//
// Prompt (no tokenizer files; ids chosen directly, in the Idefics3 processor's
// layout for one unsplit image): BOS, textTokens/2 - 1 random text ids,
// <fake_token_around_image> <global-img> <image> x imageSeqLen <fake_token_around_image>,
// the remaining random text ids. With the defaults on smolvlm-256m: 40 text
// tokens (BOS included) + 67 image-block tokens (64 <image>: one 512x512 image,
// 1024 patches, pixel-shuffle scale 4) = 107 prompt tokens. Pixels: uniform in
// [-1, 1] (the processor's normalized range). Ids: <image> = vocab - 90,
// <fake_token_around_image> = vocab - 91, <global-img> = vocab - 128 (SmolVLM's
// 49190, 49189, 49152 at vocab 49280); text ids in [3, vocab - 128).
// No stop token (eosTokenIds empty): every completion has exactly L tokens.
//
// Also checks agreement: greedy decoding (1 completion, L tokens) on both sides
// should give the same ids; with random weights the logits are nearly flat, so
// float differences can flip a near-tie: the report gives the matching prefix
// and the top1 - top2 logit margin (PyTorch's) where they first differ.
//
// Runs alternate the three measurements (rotating their order each round) so a
// change in load from other processes on a shared machine biases none of them.
//
// Flags: --preset tiny|small|smolvlm-256m (smolvlm-256m)  --runs N (per preset:
//   256m 2, small 5, tiny 10; one 256m round of the three takes ~1.5 min on 2
//   cores, so the default run takes ~5 min)  --warmup N (1)  --new-tokens L (32)  --group G (8)
//   --text-tokens n (40)  --threads n (libtorch's current count; PyTorch gets the same)
//   --seed s (0)  --no-ref  --no-check  --profile (one more run of each of ours'
//   modes, timed phase by phase: vision, prefill, and per decode step sampling /
//   input building / forward)  --json (last line is one JSON object)
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { generate, positionsFromMask, resolveSampling, selectNext } from "../src/generate/index.js";
import { saveSafetensors } from "../src/io/safetensors.js";
import type { KVCache } from "../src/nn/index.js";
import { buildModel, type Idefics3Config, Idefics3ForConditionalGeneration, initWeights, presetConfig, presetFiles, type Idefics3PresetName as PresetName, savePretrained } from "../src/models/index.js";
import { cat, features, Generator, getNumThreads, keep, noGrad, ones, rand, randint, setNumThreads, tensor, type Tensor, tidy } from "../src/torch/index.js";
import { findTorchPython } from "./python.js";

// ---- options -------------------------------------------------------------------------

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
function argInt(name: string, fallback: number): number {
  const v = argValue(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`bench:generate: --${name} must be a non-negative integer, got '${v}'`);
  return n;
}

const PRESETS = ["tiny", "small", "smolvlm-256m"] as const;
/** Timed runs per preset, chosen so the whole bench stays under ~5 min on 2 cores. */
const DEFAULT_RUNS: Record<(typeof PRESETS)[number], number> = { tiny: 10, small: 5, "smolvlm-256m": 2 };
/** Vocabulary of the presets that have no padVocabTo (no tokenizer is built). */
const SMALL_VOCAB = 512;

const preset = (argValue("preset") ?? "smolvlm-256m") as (typeof PRESETS)[number];
if (!PRESETS.includes(preset)) throw new Error(`bench:generate: --preset must be one of ${PRESETS.join(", ")}, got '${preset}'`);
const runs = Math.max(1, argInt("runs", DEFAULT_RUNS[preset]));
const warmup = argInt("warmup", 1);
const L = Math.max(1, argInt("new-tokens", 32));
const G = Math.max(1, argInt("group", 8));
const textTokens = Math.max(2, argInt("text-tokens", 40));
const seed = argInt("seed", 0);
const asJson = process.argv.includes("--json");
const withRef = !process.argv.includes("--no-ref");
const withCheck = !process.argv.includes("--no-check");
const withProfile = process.argv.includes("--profile");
const threadsArg = argValue("threads");
if (threadsArg !== undefined) setNumThreads(argInt("threads", 1));
const threads = getNumThreads();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const log = (s: string) => console.log(s);

// ---- model and inputs -------------------------------------------------------------------

interface Setup {
  model: Idefics3ForConditionalGeneration;
  cfg: Idefics3Config;
  inputIds: Tensor;
  attentionMask: Tensor;
  pixelValues: Tensor;
  promptLen: number;
  dir: string;
}

/** The prompt's ids (see the header for the layout). */
function promptIds(vocab: number, imageSeqLen: number, gen: Generator): number[] {
  const text = (n: number) => tidy(() => randint(3, vocab - 128, [n], { generator: gen }).toFlatArray().map(Number));
  const before = Math.floor(textTokens / 2) - 1;
  const after = textTokens - 1 - before;
  const image = [vocab - 91, vocab - 128, ...new Array<number>(imageSeqLen).fill(vocab - 90), vocab - 91];
  return [1, ...text(before), ...image, ...text(after)];
}

async function setup(): Promise<Setup> {
  const vocab = presetFiles(preset as PresetName).padVocabTo ?? SMALL_VOCAB;
  const cfg = presetConfig("idefics3", preset as PresetName, { vocabSize: vocab, bosTokenId: 1, eosTokenId: 2, padTokenId: 0, imageTokenId: vocab - 90 }) as Idefics3Config;
  const model = buildModel(cfg) as Idefics3ForConditionalGeneration;
  initWeights(model, cfg.text.initializerRange, seed);
  model.eval();
  const gen = new Generator(seed + 1);
  const ids = promptIds(vocab, cfg.imageSeqLen, gen);
  const size = cfg.vision.imageSize;
  const { inputIds, attentionMask, pixelValues } = tidy(() => ({
    inputIds: keep(tensor(ids, { dtype: "int64" }).view(1, ids.length)),
    attentionMask: keep(ones([1, ids.length], { dtype: "int64" })),
    pixelValues: keep(rand([1, 3, size, size], { generator: gen }).mul(2).sub(1)),
  }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vlm-grpo-bench-generate-${preset}-`));
  if (withRef) {
    await savePretrained(model, dir);
    saveSafetensors(path.join(dir, "inputs.safetensors"), { input_ids: inputIds, pixel_values: pixelValues });
  }
  return { model, cfg, inputIds, attentionMask, pixelValues, promptLen: ids.length, dir };
}

// ---- our side ----------------------------------------------------------------------------

function runOurs(s: Setup, share: boolean, runSeed: number): { ms: number; tokens: number[][] } {
  const t0 = performance.now();
  const out = generate(
    s.model,
    { inputIds: s.inputIds, attentionMask: s.attentionMask, images: [{ pixelValues: s.pixelValues }] },
    { numReturnSequences: G, maxNewTokens: L, temperature: 1, seed: runSeed, eosTokenIds: [], padTokenId: 0, shareGroup: share },
  );
  const ms = performance.now() - t0;
  const tokens = out.completions.map((c) => c.tokenIds);
  if (tokens.length !== G || tokens.some((t) => t.length !== L)) {
    throw new Error(`bench:generate: expected ${G} completions of ${L} tokens, got lengths [${tokens.map((t) => t.length).join(", ")}]`);
  }
  return { ms, tokens };
}

function greedyOurs(s: Setup): number[] {
  const out = generate(
    s.model,
    { inputIds: s.inputIds, attentionMask: s.attentionMask, images: [{ pixelValues: s.pixelValues }] },
    { numReturnSequences: 1, maxNewTokens: L, doSample: false, eosTokenIds: [], padTokenId: 0, shareGroup: true },
  );
  return out.completions[0].tokenIds;
}

interface Profile {
  vision_ms: number;
  prefill_ms: number;
  /** Repeating the prompt's KV cache G times (shared mode only). */
  repeat_cache_ms: number;
  /** selectNext (softmax, multinomial, log-probs) + reading the ids back, summed over L steps. */
  sampling_ms: number;
  /** Building the next step's ids / mask / position tensors, summed. */
  inputs_ms: number;
  /** model.forward of the L - 1 decode steps, summed. */
  decode_forward_ms: number;
  total_ms: number;
}

/**
 * The steps of generate() (src/generate/generate.ts), replayed one by one with
 * timers: the same calls in the same order, so the phases add up to about one
 * generate call.
 */
function profileOurs(s: Setup, share: boolean): Profile {
  return noGrad(() => {
    const p: Profile = { vision_ms: 0, prefill_ms: 0, repeat_cache_ms: 0, sampling_ms: 0, inputs_ms: 0, decode_forward_ms: 0, total_ms: 0 };
    const sampling = resolveSampling({ temperature: 1 });
    const generator = new Generator(seed + 100);
    const tStart = performance.now();
    let cache: KVCache = s.model.newCache();
    let t = performance.now();
    const { feats, ids, mask0, pixels } = tidy(() => {
      const rep = share ? 1 : G;
      const ids = keep(s.inputIds.repeatInterleave(rep, 0));
      const mask0 = keep(s.attentionMask.repeatInterleave(rep, 0));
      const pixels = keep(s.pixelValues.repeatInterleave(rep, 0));
      return { feats: keep(s.model.encodeImages(pixels)), ids, mask0, pixels };
    });
    p.vision_ms = performance.now() - t;
    t = performance.now();
    let { last, mask } = tidy(() => {
      const out = s.model.forward({ inputIds: ids, attentionMask: mask0, positionIds: positionsFromMask(mask0), cache, imageFeatures: feats, logitsToKeep: 1 });
      let last = out.logits.select(1, 0);
      let m = mask0;
      if (share && G > 1) {
        last = last.repeatInterleave(G, 0);
        m = m.repeatInterleave(G, 0);
      }
      return { last: keep(last), mask: keep(m.clone()) };
    });
    p.prefill_ms = performance.now() - t;
    for (const x of [feats, ids, mask0, pixels]) x.dispose();
    if (share && G > 1) {
      t = performance.now();
      const repeated = cache.repeatBatch(G);
      cache.dispose();
      cache = repeated;
      p.repeat_cache_ms = performance.now() - t;
    }
    for (let step = 0; step < L; step++) {
      t = performance.now();
      const next = tidy(() => selectNext(last, sampling, generator));
      const chosen = next.tokens.toFlatArray();
      next.logProbs.toFlatArray();
      next.tokens.dispose();
      next.logProbs.dispose();
      p.sampling_ms += performance.now() - t;
      if (step === L - 1) break;
      t = performance.now();
      const inp = tidy(() => {
        const idsT = tensor(chosen.map(Number), { dtype: "int64" }).view(G, 1);
        const m = cat([mask, ones([G, 1], { dtype: "int64" })], 1);
        return { ids: keep(idsT), m: keep(m), pos: keep(m.sum(-1, true).sub(1)) };
      });
      const t1 = performance.now();
      p.inputs_ms += t1 - t;
      const out = tidy(() => keep(s.model.forward({ inputIds: inp.ids, attentionMask: inp.m, positionIds: inp.pos, cache, logitsToKeep: 1 }).logits.select(1, 0)));
      p.decode_forward_ms += performance.now() - t1;
      last.dispose();
      mask.dispose();
      inp.ids.dispose();
      inp.pos.dispose();
      last = out;
      mask = inp.m;
    }
    last.dispose();
    mask.dispose();
    cache.dispose();
    p.total_ms = performance.now() - tStart;
    return p;
  });
}

// ---- the PyTorch side (a server process, one run per request) ---------------------------------

interface RefRun {
  ms: number;
  vision_ms: number;
  prefill_ms: number;
  decode_forward_ms: number;
  sampling_ms: number;
  tokens: number[][] | number[];
  margins?: number[];
}

class RefServer {
  private readonly lines: AsyncIterator<string>;
  private stderr = "";
  info: { torch: string; threads: number } = { torch: "?", threads: 0 };
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.on("data", (b: Buffer) => (this.stderr += b.toString()));
    this.lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }
  static async start(python: string, script: string, dir: string): Promise<RefServer> {
    const s = new RefServer(spawn(python, [script, dir, String(threads)], { stdio: "pipe" }));
    s.info = (await s.read()) as unknown as { torch: string; threads: number };
    return s;
  }
  private async read(): Promise<RefRun> {
    const r = await this.lines.next();
    if (r.done) throw new Error(`bench:generate: ${path.basename(refScript)} ended early (exit ${this.child.exitCode}):\n${this.stderr}`);
    const o = JSON.parse(r.value) as RefRun & { error?: string };
    if (o.error) throw new Error(`bench:generate: ${path.basename(refScript)}: ${o.error}`);
    return o;
  }
  async ask(cmd: string): Promise<RefRun> {
    this.child.stdin.write(cmd + "\n");
    return this.read();
  }
  close(): void {
    this.child.stdin.end("quit\n");
  }
}

// ---- main ------------------------------------------------------------------------------------

const here = path.dirname(fileURLToPath(import.meta.url));
const refScript = path.resolve(here, "../../bench/generate_ref.py");

const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");
log(`libtorch ${features.torchVersion}, ${threads} intra-op thread(s); load average ${loadavg()}`);
const tSetup = performance.now();
const s = await setup();
log(
  `preset ${preset}: ${(s.model.numParameters() / 1e6).toFixed(1)}M parameters (random, seed ${seed}); prompt ${s.promptLen} tokens ` +
    `(${textTokens} text + ${s.cfg.imageSeqLen + 3} image block, one ${s.cfg.vision.imageSize}px image = ${s.cfg.imageSeqLen} <image> tokens); ` +
    `${G} completions x ${L} tokens; setup ${((performance.now() - tSetup) / 1000).toFixed(1)} s`,
);
const python = withRef ? findTorchPython() : null;
if (withRef && !python) log("no Python with torch found (set PYTHON, or on Debian: apt-get install python3-torch); PyTorch side skipped");
let ref: RefServer | null = null;
const times = { shared: [] as number[], unshared: [] as number[], pytorch: [] as number[] };
const refPhases: RefRun[] = [];
let greedy: { ours: number[]; pytorch: number[]; prefix: number; same: number; margin: number | null } | null = null;
let profiles: { shared: Profile; unshared: Profile } | null = null;
try {
  if (python) ref = await RefServer.start(python, refScript, s.dir);
  type Side = "shared" | "unshared" | "pytorch";
  const order: Side[] = ["shared", "unshared", "pytorch"];
  for (let i = 0; i < warmup + runs; i++) {
    const rot = order.map((_, k) => order[(k + i) % order.length]);
    const line: string[] = [];
    for (const side of rot) {
      // Between runs, let the event loop run (handle finalizers run from it).
      await new Promise((resolve) => setImmediate(resolve));
      let ms: number;
      if (side === "pytorch") {
        if (!ref) continue;
        const r = await ref.ask(`sample ${G} ${L} ${seed + i}`);
        ms = r.ms;
        if (i >= warmup) refPhases.push(r);
      } else {
        ms = runOurs(s, side === "shared", seed + i).ms;
      }
      if (i >= warmup) times[side].push(ms);
      line.push(`${side} ${(ms / 1000).toFixed(2)} s`);
    }
    log(`  ${i < warmup ? "warm-up" : `run ${i - warmup + 1}/${runs}`}: ${line.join(", ")}; load ${loadavg()}`);
  }
  if (withCheck) {
    const ours = greedyOurs(s);
    if (ref) {
      const r = await ref.ask(`greedy ${L}`);
      const theirs = r.tokens as number[];
      let prefix = 0;
      while (prefix < L && ours[prefix] === theirs[prefix]) prefix++;
      const same = ours.filter((x, k) => x === theirs[k]).length;
      greedy = { ours, pytorch: theirs, prefix, same, margin: prefix < L ? r.margins![prefix] : null };
    }
  }
  if (withProfile) profiles = { shared: profileOurs(s, true), unshared: profileOurs(s, false) };
} finally {
  ref?.close();
  fs.rmSync(s.dir, { recursive: true, force: true });
}

const tokS = (ms: number[]) => (ms.length ? (G * L) / (median(ms) / 1000) : null);
const oursShared = tokS(times.shared)!;
const oursUnshared = tokS(times.unshared)!;
const pytorch = tokS(times.pytorch);
const f = (x: number | null, k = 1) => (x === null ? "n/a" : x.toFixed(k));
const msLine = (xs: number[]) => `median ${f(median(xs))} ms (min ${f(Math.min(...xs))}, max ${f(Math.max(...xs))})`;
log(`results (median of ${runs} runs after ${warmup} warm-up; tokens/s = ${G} x ${L} / seconds per generate call):`);
log(`  ours, group sharing:    ${f(oursShared)} tok/s  ${msLine(times.shared)}`);
log(`  ours, no sharing:       ${f(oursUnshared)} tok/s  ${msLine(times.unshared)}`);
if (pytorch !== null) log(`  PyTorch ${ref!.info.torch} (${python}, ${ref!.info.threads} threads, no sharing): ${f(pytorch)} tok/s  ${msLine(times.pytorch)}`);
const ratioShared = pytorch === null ? null : oursShared / pytorch;
const ratioUnshared = pytorch === null ? null : oursUnshared / pytorch;
const sharingSpeedup = oursShared / oursUnshared;
log(`  ratios (tok/s): shared / PyTorch ${f(ratioShared, 2)}x, unshared / PyTorch ${f(ratioUnshared, 3)}x, shared / unshared ${f(sharingSpeedup, 2)}x`);
// Ratios of the fastest runs: less sensitive to bursts of load from other processes.
const fastest = (xs: number[]) => (xs.length ? Math.min(...xs) : null);
const minRatio = (a: number[], b: number[]) => (a.length && b.length ? fastest(b)! / fastest(a)! : null);
const minShared = minRatio(times.shared, times.pytorch);
const minUnshared = minRatio(times.unshared, times.pytorch);
const minSharing = minRatio(times.shared, times.unshared)!;
log(`  ratios of the fastest runs:  shared / PyTorch ${f(minShared, 2)}x, unshared / PyTorch ${f(minUnshared, 3)}x, shared / unshared ${f(minSharing, 2)}x`);
if (refPhases.length) {
  const m = (k: keyof RefRun) => median(refPhases.map((r) => r[k] as number));
  log(`  PyTorch phases (median): vision ${f(m("vision_ms"))} ms, prefill ${f(m("prefill_ms"))} ms, decode forward ${f(m("decode_forward_ms"))} ms, sampling ${f(m("sampling_ms"))} ms`);
}
if (profiles) {
  for (const [k, p] of Object.entries(profiles)) {
    log(
      `  ours ${k} phases (one run): vision ${f(p.vision_ms)} ms, prefill ${f(p.prefill_ms)} ms, repeat cache ${f(p.repeat_cache_ms)} ms, ` +
        `decode forward ${f(p.decode_forward_ms)} ms (${f(p.decode_forward_ms / (L - 1))} ms/step), sampling ${f(p.sampling_ms)} ms, inputs ${f(p.inputs_ms)} ms; total ${f(p.total_ms)} ms`,
    );
  }
}
if (greedy) {
  const note =
    greedy.prefix === L
      ? `greedy check: all ${L} token ids match PyTorch`
      : `greedy check: ${greedy.prefix} leading token ids match (${greedy.same}/${L} positions equal); first difference at step ${greedy.prefix} where PyTorch's top1 - top2 logit margin is ${greedy.margin?.toExponential(2)} (a near-tie with random weights flips under float rounding)`;
  log(`  ${note}`);
  if (greedy.prefix < L) log(`    ours    ${greedy.ours.join(" ")}\n    PyTorch ${greedy.pytorch.join(" ")}`);
}
s.model.dispose();
for (const x of [s.inputIds, s.attentionMask, s.pixelValues]) x.dispose();
if (asJson) {
  const r = (x: number | null, k = 2) => (x === null ? null : Number(x.toFixed(k)));
  console.log(
    JSON.stringify({
      preset,
      completions: G,
      new_tokens: L,
      ours_shared_tok_s: r(oursShared),
      ours_unshared_tok_s: r(oursUnshared),
      pytorch_tok_s: r(pytorch),
      ratio_shared_vs_pytorch: r(ratioShared, 3),
      ratio_unshared_vs_pytorch: r(ratioUnshared, 3),
      sharing_speedup: r(sharingSpeedup, 3),
      ratio_min_shared_vs_pytorch: r(minShared, 3),
      ratio_min_unshared_vs_pytorch: r(minUnshared, 3),
      sharing_speedup_min: r(minSharing, 3),
      prompt_tokens: s.promptLen,
      runs,
      warmup,
      threads,
      ours_shared_ms: times.shared.map((x) => r(x, 1)),
      ours_unshared_ms: times.unshared.map((x) => r(x, 1)),
      pytorch_ms: times.pytorch.map((x) => r(x, 1)),
      greedy_match_prefix: greedy?.prefix ?? null,
      greedy_match_positions: greedy?.same ?? null,
      profile: profiles && Object.fromEntries(Object.entries(profiles).map(([k, p]) => [k, Object.fromEntries(Object.entries(p).map(([q, v]) => [q, r(v, 1)]))])),
      libtorch: features.torchVersion,
      pytorch: ref?.info.torch ?? null,
    }),
  );
}
