// `npm run bench:generate`: sampling G completions (default 8) of L tokens
// (default 32) for one image prompt, ours against transformers'
// `model.generate()` (the real peer, in the peer venv of scripts/setup-peers.sh),
// on the same weights, prompt, image, sampling settings and thread count, in
// one run. Three ways, alternating round by round (their order rotates):
//   ours, shared      generate() with group sharing: vision tower and prompt
//                     prefill once, the prompt's KV cache repeated G times;
//   ours, unshared    generate() with shareGroup false: prompt and image
//                     repeated G times up front, everything per completion;
//   transformers      model.generate(num_return_sequences=G): transformers
//                     expands the inputs G times before the prefill, so its
//                     vision tower and prefill run G times (as ours unshared).
// tokens/s = G x L / seconds of one whole generate call (vision and prefill
// included).
//
// Same weights: ours writes the model folder once (bench/model_folder.ts:
// the preset's config, tokenizer and processor files, random weights); ours
// loads it with loadPretrained, transformers with
// AutoModelForImageTextToText.from_pretrained. With --lora r, ours adds LoRA
// adapters (rank r, alpha 2r, on q,k,v,o,gate,up,down of the decoder; lora_B
// filled with N(0, 0.02^2) so the adapters change the output) and saves them
// as a PEFT folder that transformers' side loads with PeftModel.from_pretrained;
// both run them unmerged. Same prompt and image: transformers' processor builds
// the one-image chat prompt (bench/peer_common.py) and writes its tensors, which
// ours reads. Same sampling: temperature 1, no top-k/top-p, exactly L new tokens
// (ours: no EOS id; transformers: min_new_tokens = max_new_tokens = L).
// Check: greedy decoding of L tokens on both sides gives the same ids (the
// report gives the matching prefix where they differ).
//
// Models (--model): smolvlm-256m (Idefics3, SmolVLM-256M's shapes, one 512x512
// image = 1 tile, 64 image tokens) and qwen2.5-vl-3b (Qwen2.5-VL-3B's layer
// widths, one 448x448 image = 256 image tokens, LoRA r16 by default; by default
// cut to 4 of 36 decoder layers and 4 of 32 vision blocks, said in the
// output: the full 3B in fp32 is ~15 GB per side on a 24 GB machine shared with
// other jobs, and one round would take minutes; --text-layers / --vision-layers
// 0 keep the preset's).
//
// MFU = model FLOPs of the call (bench/flops.ts; each side charged the work it
// runs: vision and prefill once for ours shared, G times otherwise) / (seconds
// x the fp32 matmul peak measured through our API in the same run).
//
// Flags: --model smolvlm-256m|qwen2.5-vl-3b (smolvlm-256m)  --runs N  --warmup N (1)
//   --group G (8)  --new-tokens L (32)  --lora r  --text-layers n  --vision-layers n
//   --image WxH  --threads n (ours' intra-op threads; the peer gets the same)
//   --seed s (0)  --no-peer  --no-check  --json (last line is one JSON object)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { generate } from "../src/generate/index.js";
import { loadPretrained, saveAdapter, type VisionLanguageModel } from "../src/models/index.js";
import { applyLora, loraModules } from "../src/nn/lora.js";
import { features, getNumThreads, noGrad, randn, setNumThreads, type Tensor, tidy } from "../src/torch/index.js";
import { generationFlops, imagePatches, modelShape } from "./flops.js";
import { matmulGflops } from "./matmul.js";
import { benchModelFields, cutNote, readPeerInputs, writeBenchModel } from "./model_folder.js";
import { PeerServer, peerUnavailable } from "./peers.js";
import { argInt, argValue, imageSize, loadavg, median, type ModelChoice, MODELS, spread } from "./options.js";

const modelName = (argValue("model") ?? "smolvlm-256m") as ModelChoice;
const M = MODELS[modelName];
if (!M) throw new Error(`bench:generate: --model must be one of ${Object.keys(MODELS).join(", ")}, got '${modelName}'`);
const runs = Math.max(1, argInt("runs", M.generateRuns));
const warmup = argInt("warmup", 1);
const L = Math.max(1, argInt("new-tokens", 32));
const G = Math.max(1, argInt("group", 8));
const loraRank = argInt("lora", M.lora);
const textLayers = argInt("text-layers", M.textLayers ?? 0) || undefined;
const visionLayers = argInt("vision-layers", M.visionLayers ?? 0) || undefined;
const [imgW, imgH] = imageSize(argValue("image") ?? M.image);
const seed = argInt("seed", 0);
const asJson = process.argv.includes("--json");
const withPeer = !process.argv.includes("--no-peer");
const withCheck = !process.argv.includes("--no-check");
if (argValue("threads") !== undefined) setNumThreads(argInt("threads", 1));
const threads = getNumThreads();
const log = (s: string) => console.log(s);

// ---- setup: model folder, ours, the peer ----------------------------------------------------

log(`libtorch ${features.torchVersion}, ${threads} intra-op thread(s); load average ${loadavg()}`);
const peak = Math.max(matmulGflops(1024, 10), matmulGflops(2048, 3));
log(`fp32 matmul peak through our API: ${peak.toFixed(1)} GFLOP/s (best of 1024^3 and 2048^3)`);
const tSetup = performance.now();
const bm = await writeBenchModel({ arch: M.arch, preset: M.preset, textLayers, visionLayers, seed });
const work = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-grpo-bench-generate-"));
let peer: PeerServer | null = null;
let model: VisionLanguageModel | null = null;
const cleanup = async () => {
  await peer?.close();
  model?.dispose();
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(bm.dir, { recursive: true, force: true });
};

try {
  model = (await loadPretrained(bm.dir, { dtype: "float32" })).model as VisionLanguageModel;
  model.eval();
  let adapterDir: string | null = null;
  if (loraRank > 0) {
    applyLora(model, { rank: loraRank, alpha: 2 * loraRank, dropout: 0, seed });
    noGrad(() => {
      for (const [, m] of loraModules(model!)) tidy(() => m.lora_B.weight.copy_(randn(m.lora_B.weight.shape).mul(0.02)));
    });
    adapterDir = path.join(work, "adapter");
    saveAdapter(model, adapterDir);
  }
  const peerWhy = withPeer ? peerUnavailable() : "--no-peer";
  if (peerWhy) throw new Error(`bench:generate needs the transformers peer: ${peerWhy}`);
  peer = await PeerServer.start("hf_generate.py", [bm.dir, work, String(threads), String(imgW), String(imgH), ...(adapterDir ? [adapterDir] : [])], threads);
  const info = peer.info;
  // The processor's prompt and image tensors, in our ImageInputs layout.
  const { tensors: inp, inputIds, attentionMask, image } = readPeerInputs(work);
  const promptIds = inputIds.toFlatArray().map(Number);
  const imageTokens = promptIds.filter((x) => x === model!.imageTokenId).length;
  const patches = imagePatches(bm.config, image);
  const cut = cutNote(bm, textLayers, visionLayers);
  log(
    `model ${modelName} (${M.arch}, preset ${M.preset})${cut}: ${(bm.numParameters / 1e6).toFixed(1)}M parameters, random (seed ${seed})` +
      `${loraRank ? `, LoRA r${loraRank} alpha ${2 * loraRank} on q,k,v,o,gate,up,down (unmerged; PEFT on the peer side)` : ""}; ` +
      `prompt ${promptIds.length} tokens with one ${imgW}x${imgH} image (${patches} patches, ${imageTokens} image tokens); ${G} completions x ${L} tokens; ` +
      `setup ${((performance.now() - tSetup) / 1000).toFixed(1)} s`,
  );
  log(`peer: torch ${info.torch}, transformers ${info.transformers}${info.peft ? `, peft ${info.peft}` : ""}, ${info.threads} thread(s), attention ${info.attn}`);
  const samePrompt = JSON.stringify(info.prompt_ids) === JSON.stringify(promptIds);
  if (!samePrompt) throw new Error("bench:generate: the prompt ids ours read differ from the peer's");

  const runOurs = (share: boolean, runSeed: number): number => {
    const t0 = performance.now();
    const out = generate(model!, { inputIds, attentionMask, images: [image] }, { numReturnSequences: G, maxNewTokens: L, temperature: 1, seed: runSeed, eosTokenIds: [], padTokenId: 0, shareGroup: share });
    const ms = performance.now() - t0;
    if (out.completions.length !== G || out.completions.some((c) => c.tokenIds.length !== L)) throw new Error(`bench:generate: ours made completions of lengths ${out.completions.map((c) => c.tokenIds.length)}`);
    return ms;
  };

  type Side = "shared" | "unshared" | "transformers";
  const times: Record<Side, number[]> = { shared: [], unshared: [], transformers: [] };
  const hfVision: number[] = [];
  const order: Side[] = ["shared", "unshared", "transformers"];
  for (let i = 0; i < warmup + runs; i++) {
    const line: string[] = [];
    for (let k = 0; k < order.length; k++) {
      const side = order[(k + i) % order.length];
      await new Promise((resolve) => setImmediate(resolve));
      let ms: number;
      if (side === "transformers") {
        const r = await peer.ask({ cmd: "sample", G, L, seed: seed + i });
        if (r.rows !== G || r.new_tokens !== L) throw new Error(`bench:generate: transformers returned ${r.rows} rows of ${r.new_tokens} new tokens`);
        ms = r.ms as number;
        if (i >= warmup) hfVision.push(r.vision_ms as number);
      } else {
        ms = runOurs(side === "shared", seed + i);
      }
      if (i >= warmup) times[side].push(ms);
      line.push(`${side} ${(ms / 1000).toFixed(2)} s`);
    }
    log(`  ${i < warmup ? "warm-up" : `run ${i - warmup + 1}/${runs}`}: ${line.join(", ")}; load ${loadavg()}`);
  }

  let greedy: { ours: number[]; transformers: number[]; prefix: number } | null = null;
  if (withCheck) {
    const ours = generate(model, { inputIds, attentionMask, images: [image] }, { numReturnSequences: 1, maxNewTokens: L, doSample: false, eosTokenIds: [], padTokenId: 0 }).completions[0].tokenIds;
    const theirs = (await peer.ask({ cmd: "greedy", L })).ids as number[];
    let prefix = 0;
    while (prefix < L && ours[prefix] === theirs[prefix]) prefix++;
    greedy = { ours, transformers: theirs, prefix };
  }
  for (const t of inp.values()) t.dispose();

  // ---- report ---------------------------------------------------------------------------------
  const shape = modelShape(bm.config);
  const work1 = { promptTokens: promptIds.length, patches, G, L, loraRank };
  const flops = { shared: generationFlops(shape, { ...work1, shared: true }), unshared: generationFlops(shape, { ...work1, shared: false }) };
  const sideFlops: Record<Side, number> = { shared: flops.shared, unshared: flops.unshared, transformers: flops.unshared };
  const tokS = (xs: number[]) => (G * L) / (median(xs) / 1000);
  const mfu = (side: Side) => sideFlops[side] / (median(times[side]) / 1000) / (peak * 1e9);
  const f = (x: number, k = 1) => x.toFixed(k);
  log(`results (median of ${runs} runs after ${warmup} warm-up; tokens/s = ${G} x ${L} / seconds per generate call; MFU vs ${f(peak)} GFLOP/s):`);
  for (const side of order) {
    log(`  ${side.padEnd(12)} ${f(tokS(times[side]), 2)} tok/s  ${spread(times[side])}  ${f(sideFlops[side] / 1e9)} GFLOP, MFU ${f(mfu(side) * 100)}%`);
  }
  const ratio = (a: Side, b: Side) => median(times[b]) / median(times[a]);
  const ratioMin = (a: Side, b: Side) => Math.min(...times[b]) / Math.min(...times[a]);
  log(
    `  tokens/s ratios: ours shared / transformers ${f(ratio("shared", "transformers"), 2)}x (fastest runs ${f(ratioMin("shared", "transformers"), 2)}x), ` +
      `ours unshared / transformers ${f(ratio("unshared", "transformers"), 3)}x (fastest ${f(ratioMin("unshared", "transformers"), 3)}x), ` +
      `shared / unshared ${f(ratio("shared", "unshared"), 2)}x`,
  );
  if (hfVision.length) log(`  transformers' vision tower time (G passes, median): ${f(median(hfVision))} ms of ${f(median(times.transformers))} ms`);
  if (greedy) {
    log(greedy.prefix === L ? `  greedy check: all ${L} token ids of ours match transformers'` : `  greedy check: ${greedy.prefix} of ${L} leading ids match\n    ours         ${greedy.ours.join(" ")}\n    transformers ${greedy.transformers.join(" ")}`);
  }
  if (asJson) {
    const r = (x: number, k = 3) => Number(x.toFixed(k));
    console.log(
      JSON.stringify({
        ...benchModelFields(bm, { name: modelName, arch: M.arch, preset: M.preset, textLayers, visionLayers, loraRank }),
        prompt_tokens: promptIds.length,
        image_tokens: imageTokens,
        completions: G,
        new_tokens: L,
        runs,
        warmup,
        threads,
        matmul_gflops: r(peak, 1),
        tok_s: Object.fromEntries(order.map((s) => [s, r(tokS(times[s]), 2)])),
        ms: Object.fromEntries(order.map((s) => [s, times[s].map((x) => r(x, 1))])),
        gflop: Object.fromEntries(order.map((s) => [s, r(sideFlops[s] / 1e9, 1)])),
        mfu: Object.fromEntries(order.map((s) => [s, r(mfu(s), 4)])),
        ratio_shared_vs_transformers: r(ratio("shared", "transformers")),
        ratio_unshared_vs_transformers: r(ratio("unshared", "transformers")),
        transformers_vision_ms: r(median(hfVision), 1),
        greedy_match_prefix: greedy?.prefix ?? null,
        libtorch: features.torchVersion,
        peer: { ...info, prompt_ids: undefined },
      }),
    );
  }
} finally {
  await cleanup();
}
