// Batched, left-padded generation with a KV cache.
//
// Group sharing: when `numReturnSequences` completions are drawn from each
// prompt (GRPO's group), the vision tower and the prompt's forward pass run
// once per prompt; the prompt's KV cache and last logits are then repeated
// n times and only the completion tokens are decoded per sequence. With
// `shareGroup: false` each prompt is repeated n times up front and everything
// (images included) is recomputed per completion, as a straightforward
// implementation does (kept for benchmarks and as a cross-check).
import { cat, Generator, keep, noGrad, ones, type Tensor, tensor, tidy } from "../torch/index.js";
import { resolveSampling, selectNext, type SamplingOptions } from "./sampling.js";
import { StopStringMatcher } from "./stop.js";

/** The cache a model hands out; the generator only repeats and frees it. */
export interface GenerationCache {
  repeatBatch(n: number): GenerationCache;
  dispose(): void;
}

export interface CausalLMForwardInputs {
  inputIds: Tensor;
  attentionMask?: Tensor;
  positionIds?: Tensor;
  cache?: GenerationCache;
  pixelValues?: Tensor;
  imageFeatures?: Tensor;
  /** [numImages, 3] patch grids, for models whose images are patch sequences (Qwen2-VL). */
  imageGridThw?: Tensor | readonly (readonly number[])[];
  logitsToKeep?: number;
}

/** What generation needs from a model (LlamaForCausalLM, Idefics3ForConditionalGeneration). */
export interface GenerativeModel {
  forward(inputs: CausalLMForwardInputs): { logits: Tensor };
  newCache(): GenerationCache;
  /** Vision features of all images [N, imageSeqLen, hidden]; absent on text-only models. */
  encodeImages?(pixelValues: Tensor, imageGridThw?: Tensor): Tensor;
  /**
   * Optional, for models whose positions are not the mask's cumsum (Qwen2-VL's
   * 3-D multimodal RoPE): the prompt's position ids, and a per-row state
   * [B, ...] that decodePositionIds needs (repeated with the rows when a
   * group shares a prompt). Default: positionsFromMask.
   */
  promptPositionIds?(inputIds: Tensor, attentionMask: Tensor, imageGridThw?: Tensor): { positionIds: Tensor; state: Tensor };
  /** Positions of the last column of attentionMask (a decode step) from promptPositionIds' state. */
  decodePositionIds?(attentionMask: Tensor, state: Tensor): Tensor;
}

export interface GenerateInputs {
  /** Prompt ids [B, T] int64, left-padded. */
  inputIds: Tensor;
  /** [B, T] 0/1 (int64 or bool); 0 marks left padding. Default: all ones. */
  attentionMask?: Tensor;
  /** Every image of the batch in prompt order [N, 3, H, W]. */
  pixelValues?: Tensor;
  /** Images per prompt (sums to N). Default: N / B each. Needed only without group sharing. */
  imagesPerPrompt?: number[];
  /** [N, 3] patch grid per image, for models whose pixelValues are patch rows (Qwen2-VL: t*h*w rows per image). */
  imageGridThw?: Tensor;
}

export interface GenerateOptions extends SamplingOptions {
  /** Maximum number of new tokens per completion. Default 32. */
  maxNewTokens?: number;
  /** Completions per prompt. Default 1. */
  numReturnSequences?: number;
  /** Token ids that end a completion (the EOS token is kept in `tokenIds`). */
  eosTokenIds: number[];
  /** Id fed to finished rows while others go on. */
  padTokenId: number;
  /** Strings that end a completion; the text is cut after the first match. Needs `decode`. */
  stopStrings?: string[];
  /** Token ids -> text (the tokenizer's decode, special tokens skipped). Needed for `text` and stop strings. */
  decode?: (ids: number[]) => string;
  /** Seed for the sampling generator (reproducible runs). Ignored when `generator` is given. */
  seed?: number;
  generator?: Generator;
  /** Compute the vision features and the prompt's KV cache once per prompt. Default true. */
  shareGroup?: boolean;
  /** Token ids never generated (e.g. image placeholder tokens), as HF's suppress_tokens. */
  suppressTokenIds?: number[];
}

export type FinishReason = "eos" | "stop" | "length";

export interface Completion {
  /** Index of the prompt in the batch. */
  promptIndex: number;
  /** Generated ids (EOS included when it ended the completion; nothing after it). */
  tokenIds: number[];
  /** Decoded text (empty when no `decode` was given); cut at a stop string. */
  text: string;
  /** Per-token log-prob of each generated id under log_softmax(logits / temperature). */
  logProbs: number[];
  finishReason: FinishReason;
}

export interface GenerationResult {
  /** B * numReturnSequences completions, prompt-major: prompt 0's group first. */
  completions: Completion[];
  /** Number of forward passes through the decoder (prefill included). */
  forwardPasses: number;
}

/** Generates completions for a batch of prompts. Runs without autograd. */
export function generate(model: GenerativeModel, inputs: GenerateInputs, opts: GenerateOptions): GenerationResult {
  return noGrad(() => generateImpl(model, inputs, opts));
}

function generateImpl(model: GenerativeModel, inputs: GenerateInputs, opts: GenerateOptions): GenerationResult {
  const sampling = resolveSampling(opts);
  const n = opts.numReturnSequences ?? 1;
  const maxNew = opts.maxNewTokens ?? 32;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`generate: numReturnSequences must be a positive integer (got ${n})`);
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new RangeError(`generate: maxNewTokens must be a positive integer (got ${maxNew})`);
  if (inputs.inputIds.ndim !== 2) throw new Error(`generate: inputIds must be [batch, seq] (got [${inputs.inputIds.shape.join(", ")}])`);
  if (opts.stopStrings?.length && !opts.decode) throw new Error("generate: stopStrings need a decode function");
  const [batch, promptLen] = inputs.inputIds.shape;
  const share = opts.shareGroup ?? true;
  const generator = opts.generator ?? (opts.seed !== undefined ? new Generator(opts.seed) : undefined);
  const eos = new Set(opts.eosTokenIds);

  const cache0 = model.newCache();
  let cache: GenerationCache = cache0;
  let lastLogits: Tensor;
  let mask: Tensor;
  let positionState: Tensor | null = null;
  let forwardPasses = 0;
  try {
    // ---- prefill -------------------------------------------------------------
    ({ lastLogits, mask, positionState } = tidy(() => {
      const baseMask = (inputs.attentionMask ?? ones([batch, promptLen], { dtype: "int64", device: inputs.inputIds.device })).long();
      let ids = inputs.inputIds;
      let m = baseMask;
      let pixelValues = inputs.pixelValues;
      let grid = inputs.imageGridThw;
      let imageFeatures: Tensor | undefined;
      if (share) {
        if (pixelValues && model.encodeImages) imageFeatures = model.encodeImages(pixelValues, grid);
      } else if (n > 1) {
        ids = ids.repeatInterleave(n, 0);
        m = m.repeatInterleave(n, 0);
        if (pixelValues) pixelValues = repeatImages(pixelValues, batch, n, inputs.imagesPerPrompt, grid);
        if (grid) grid = repeatImages(grid, batch, n, inputs.imagesPerPrompt);
      }
      let positionIds: Tensor;
      let state: Tensor | null = null;
      if (model.promptPositionIds) ({ positionIds, state } = model.promptPositionIds(ids, m, grid));
      else positionIds = positionsFromMask(m);
      const out = model.forward({
        inputIds: ids,
        attentionMask: m,
        positionIds,
        cache: cache0,
        pixelValues: imageFeatures ? undefined : pixelValues,
        imageFeatures,
        imageGridThw: grid,
        logitsToKeep: 1,
      });
      let last = out.logits.select(1, out.logits.shape[1] - 1);
      if (share && n > 1) {
        last = last.repeatInterleave(n, 0);
        m = m.repeatInterleave(n, 0);
        if (state) state = state.repeatInterleave(n, 0);
      }
      return { lastLogits: keep(last), mask: keep(m), positionState: state ? keep(state) : null };
    }));
    forwardPasses++;
    if (share && n > 1) {
      cache = cache0.repeatBatch(n);
      cache0.dispose();
    }

    // ---- decode ----------------------------------------------------------------
    const rows = batch * n;
    const tokens: number[][] = Array.from({ length: rows }, () => []);
    const logProbs: number[][] = Array.from({ length: rows }, () => []);
    const finish: (FinishReason | null)[] = new Array(rows).fill(null);
    const stop = opts.stopStrings?.length ? new StopStringMatcher(opts.stopStrings) : null;

    const vocab = lastLogits.shape[lastLogits.ndim - 1];
    const suppress = opts.suppressTokenIds?.length
      ? keep(tensor(Array.from({ length: vocab }, (_, i) => opts.suppressTokenIds!.includes(i)), { device: lastLogits.device }))
      : null;
    for (let step = 0; step < maxNew; step++) {
      const next = tidy(() => selectNext(suppress ? lastLogits.maskedFill(suppress, -Infinity) : lastLogits, sampling, generator));
      const chosen = next.tokens.toFlatArray();
      const lps = next.logProbs.toFlatArray();
      next.tokens.dispose();
      next.logProbs.dispose();
      const fed: number[] = new Array(rows);
      for (let r = 0; r < rows; r++) {
        if (finish[r] !== null) {
          fed[r] = opts.padTokenId;
          continue;
        }
        const id = chosen[r];
        tokens[r].push(id);
        logProbs[r].push(lps[r]);
        fed[r] = id;
        if (eos.has(id)) finish[r] = "eos";
        else if (stop && opts.decode) {
          const cut = stop.firstMatchEnd(opts.decode(tokens[r]));
          if (cut !== null) finish[r] = "stop";
        }
      }
      if (finish.every((f) => f !== null) || step === maxNew - 1) break;
      const stepOut = tidy(() => {
        const ids = tensor(fed, { dtype: "int64", device: lastLogits.device }).view(rows, 1);
        const m = cat([mask, ones([rows, 1], { dtype: "int64", device: mask.device })], 1);
        const positionIds = positionState && model.decodePositionIds ? model.decodePositionIds(m, positionState) : m.sum(-1, true).sub(1);
        const out = model.forward({ inputIds: ids, attentionMask: m, positionIds, cache, logitsToKeep: 1 });
        return { last: keep(out.logits.select(1, out.logits.shape[1] - 1)), m: keep(m) };
      });
      forwardPasses++;
      lastLogits.dispose();
      mask.dispose();
      lastLogits = stepOut.last;
      mask = stepOut.m;
    }

    const completions: Completion[] = [];
    for (let r = 0; r < rows; r++) {
      let text = opts.decode ? opts.decode(tokens[r]) : "";
      if (stop && finish[r] === "stop") {
        const cut = stop.firstMatchEnd(text);
        if (cut !== null) text = text.slice(0, cut);
      }
      completions.push({
        promptIndex: Math.floor(r / n),
        tokenIds: tokens[r],
        text,
        logProbs: logProbs[r],
        finishReason: finish[r] ?? "length",
      });
    }
    lastLogits.dispose();
    mask.dispose();
    suppress?.dispose();
    return { completions, forwardPasses };
  } finally {
    positionState?.dispose();
    cache.dispose();
    if (cache !== cache0) cache0.dispose();
  }
}

/** HF's position ids for left padding: cumsum(mask) - 1, with padded slots set to 1. */
export function positionsFromMask(mask: Tensor): Tensor {
  return tidy(() => {
    const m = mask.long();
    const pos = m.cumsum(-1).sub(1);
    return pos.maskedFill(m.eq(0), 1);
  });
}

/**
 * Repeats each prompt's block of images n times, keeping prompt order (no
 * group sharing). An image is one row of `rows`, or, with `grids` [N, 3],
 * t*h*w consecutive rows (patch rows).
 */
function repeatImages(rows: Tensor, batch: number, n: number, imagesPerPrompt?: number[], grids?: Tensor): Tensor {
  const sizes = grids ? (grids.toList() as number[][]).map(([t, h, w]) => t * h * w) : new Array<number>(rows.shape[0]).fill(1);
  const total = sizes.length;
  if (sizes.reduce((a, b) => a + b, 0) !== rows.shape[0]) throw new Error(`generate: imageGridThw describes ${sizes.reduce((a, b) => a + b, 0)} patch rows but pixelValues has ${rows.shape[0]}`);
  const counts = imagesPerPrompt ?? new Array(batch).fill(total / batch);
  if (counts.length !== batch || counts.some((c) => !Number.isInteger(c) || c < 0) || counts.reduce((a, b) => a + b, 0) !== total) {
    throw new Error(`generate: imagesPerPrompt must give ${batch} non-negative integers summing to ${total} images (got [${counts.join(", ")}])`);
  }
  const firstRow: number[] = [];
  sizes.reduce((acc, s) => (firstRow.push(acc), acc + s), 0);
  const index: number[] = [];
  let image = 0;
  for (const c of counts) {
    for (let k = 0; k < n; k++) for (let i = image; i < image + c; i++) for (let r = 0; r < sizes[i]; r++) index.push(firstRow[i] + r);
    image += c;
  }
  return rows.indexSelect(0, tensor(index, { dtype: "int64", device: rows.device }));
}
