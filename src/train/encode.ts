// Turns dataset examples into model inputs: the chat-templated prompt with the
// image block expanded as the Idefics3 processor does, the image tiles, and
// (for SFT) the target answer's ids. Prompt and answer are tokenized
// separately and concatenated, as TRL does for prompt-completion data, so
// SFT sees exactly the token boundary GRPO's generation continues from.
// Processed images are cached per example id: the same image is not decoded
// and resized again every epoch.
import type { Example } from "../data/types.js";
import { buildMessages, type PromptConfig, targetAnswer } from "../data/prompt.js";
import type { HFTokenizer } from "../io/tokenizer.js";
import { decodeImage } from "../io/image_decode.js";
import { processImages } from "../io/image_processor.js";
import type { Idefics3ImageProcessorConfig } from "../io/image_processor_config.js";
import { expandImageTokens } from "../io/idefics3_prompt.js";
import { cat, full, keep, type Tensor, tensor, tidy } from "../torch/index.js";

export interface EncodedPrompt {
  /** Prompt token ids (chat template with generation prompt, image block expanded). */
  ids: number[];
  /** This example's image tiles [n, 3, S, S] (owned by the encoder's cache). */
  pixelValues: Tensor;
}

export interface PromptEncoderOptions {
  tokenizer: HFTokenizer;
  processor: Idefics3ImageProcessorConfig;
  imageSeqLen: number;
  prompt: PromptConfig;
  /** Refuse images with more pixels than this (decompression bombs). Default 64e6. */
  maxPixels?: number;
  /** Cache processed images per example id (default true). */
  cache?: boolean;
}

export class PromptEncoder {
  readonly tokenizer: HFTokenizer;
  private readonly opts: PromptEncoderOptions;
  private readonly pixels = new Map<string, { t: Tensor; rows: number[]; cols: number[] }>();
  private readonly promptTemplate: string;
  /** Ids that end an answer: the tokenizer's EOS (the chat template's end of turn). */
  readonly eosTokenIds: number[];
  /** Image placeholder ids a completion must never contain (<image>, <fake_token_around_image>, <global-img>, <row_R_col_C>). */
  readonly suppressTokenIds: number[];

  constructor(opts: PromptEncoderOptions) {
    this.opts = opts;
    this.tokenizer = opts.tokenizer;
    this.promptTemplate = opts.tokenizer.applyChatTemplate(buildMessages(opts.prompt), { addGenerationPrompt: true });
    const eos = opts.tokenizer.eosTokenId;
    if (eos === undefined) throw new Error("PromptEncoder: the tokenizer has no EOS token (tokenizer_config.json eos_token)");
    this.eosTokenIds = [eos];
    const names = ["<image>", "<fake_token_around_image>", "<global-img>"];
    for (let r = 1; r <= 12; r++) for (let c = 1; c <= 12; c++) names.push(`<row_${r}_col_${c}>`);
    this.suppressTokenIds = names.map((n) => opts.tokenizer.tokenToId(n)).filter((i): i is number => i !== undefined);
    if (!this.promptTemplate.includes("<image>")) throw new Error("PromptEncoder: the chat template did not render an <image> marker for the image part");
  }

  /** Decodes and processes one example's image (cached). */
  async image(ex: Example): Promise<{ t: Tensor; rows: number[]; cols: number[] }> {
    const hit = this.pixels.get(ex.id);
    if (hit) return hit;
    const label = "path" in ex.image ? ex.image.path : `${ex.source.file}${ex.source.row !== undefined ? `#${ex.source.row}` : ""}`;
    const src = "path" in ex.image ? ex.image.path : ex.image.bytes;
    const decoded = await decodeImage(src, { maxPixels: this.opts.maxPixels, label });
    const r = await processImages([decoded], this.opts.processor);
    const out = { t: keep(r.pixelValues), rows: r.rows, cols: r.cols };
    if (this.opts.cache ?? true) this.pixels.set(ex.id, out);
    return out;
  }

  /** The prompt ids and image tiles of one example. */
  async encodePrompt(ex: Example): Promise<EncodedPrompt> {
    const img = await this.image(ex);
    const text = expandImageTokens(this.promptTemplate, img.rows, img.cols, this.opts.imageSeqLen);
    return { ids: this.tokenizer.encode(text, { addSpecialTokens: false }), pixelValues: img.t };
  }

  /** The SFT target: the canonical answer then the end-of-turn token. */
  targetIds(labels: readonly string[]): number[] {
    const ids = this.tokenizer.encode(targetAnswer(labels, this.opts.prompt.categories), { addSpecialTokens: false });
    return [...ids, ...this.eosTokenIds];
  }

  /** Frees cached image tensors of examples not uncached (call when done). */
  dispose(): void {
    for (const { t } of this.pixels.values()) t.dispose();
    this.pixels.clear();
  }

  /** Cached processed image, if the encoder was not told to skip caching and the image was processed; for tests. */
  cachedCount(): number {
    return this.pixels.size;
  }
}

/** A left-padded prompt batch (generation). */
export interface PromptBatch {
  inputIds: Tensor;
  attentionMask: Tensor;
  pixelValues: Tensor;
  imagesPerPrompt: number[];
  promptLengths: number[];
}

/** Left-pads prompts into one batch; images concatenated in prompt order. */
export function collatePrompts(prompts: readonly EncodedPrompt[], padId: number): PromptBatch {
  return tidy(() => {
    const T = Math.max(...prompts.map((p) => p.ids.length));
    const ids = new BigInt64Array(prompts.length * T).fill(BigInt(padId));
    const mask = new BigInt64Array(prompts.length * T);
    prompts.forEach((p, b) => {
      const off = b * T + (T - p.ids.length);
      p.ids.forEach((v, i) => {
        ids[off + i] = BigInt(v);
        mask[off + i] = 1n;
      });
    });
    return {
      inputIds: tensor(ids, { shape: [prompts.length, T] }),
      attentionMask: tensor(mask, { shape: [prompts.length, T] }),
      pixelValues: cat(prompts.map((p) => p.pixelValues), 0),
      imagesPerPrompt: prompts.map((p) => p.pixelValues.shape[0]),
      promptLengths: prompts.map((p) => p.ids.length),
    };
  });
}

/** A right-padded prompt+target batch with labels (-100 outside the targets). */
export interface SftBatch {
  inputIds: Tensor;
  attentionMask: Tensor;
  labels: Tensor;
  pixelValues: Tensor;
  /** Number of target tokens (the loss's denominator). */
  numTargetTokens: number;
}

export const IGNORE_INDEX = -100;

export function collateSft(prompts: readonly EncodedPrompt[], targets: readonly number[][], padId: number): SftBatch {
  if (prompts.length !== targets.length) throw new Error(`collateSft: ${prompts.length} prompts but ${targets.length} targets`);
  return tidy(() => {
    const lens = prompts.map((p, i) => p.ids.length + targets[i].length);
    const T = Math.max(...lens);
    const B = prompts.length;
    const ids = new BigInt64Array(B * T).fill(BigInt(padId));
    const mask = new BigInt64Array(B * T);
    const labels = new BigInt64Array(B * T).fill(BigInt(IGNORE_INDEX));
    let numTargetTokens = 0;
    prompts.forEach((p, b) => {
      const seq = [...p.ids, ...targets[b]];
      seq.forEach((v, i) => {
        ids[b * T + i] = BigInt(v);
        mask[b * T + i] = 1n;
        if (i >= p.ids.length) labels[b * T + i] = BigInt(v);
      });
      numTargetTokens += targets[b].length;
    });
    return {
      inputIds: tensor(ids, { shape: [B, T] }),
      attentionMask: tensor(mask, { shape: [B, T] }),
      labels: tensor(labels, { shape: [B, T] }),
      pixelValues: cat(prompts.map((p) => p.pixelValues), 0),
      numTargetTokens,
    };
  });
}

/**
 * Prompt (left-padded) + completion (right-padded) sequences for scoring
 * completions: row r holds prompt promptIndex[r]. Returns the ids, the mask,
 * and the completion mask [R, C] (1 on real completion tokens).
 */
export function collateCompletions(
  prompts: PromptBatch,
  completions: readonly { promptIndex: number; tokenIds: readonly number[] }[],
  padId: number,
): { inputIds: Tensor; attentionMask: Tensor; completionMask: Tensor; completionIds: Tensor; completionLength: number } {
  return tidy(() => {
    const C = Math.max(1, ...completions.map((c) => c.tokenIds.length));
    const R = completions.length;
    const cIds = new BigInt64Array(R * C).fill(BigInt(padId));
    const cMask = new BigInt64Array(R * C);
    completions.forEach((c, r) => {
      c.tokenIds.forEach((v, i) => {
        cIds[r * C + i] = BigInt(v);
        cMask[r * C + i] = 1n;
      });
    });
    const rowsIndex = tensor(completions.map((c) => c.promptIndex), { dtype: "int64" });
    const pIds = prompts.inputIds.indexSelect(0, rowsIndex);
    const pMask = prompts.attentionMask.indexSelect(0, rowsIndex);
    const completionIds = tensor(cIds, { shape: [R, C] });
    const completionMask = tensor(cMask, { shape: [R, C] });
    return {
      inputIds: cat([pIds, completionIds], 1),
      // Padding after a completion's end stays masked out (0) so it is never attended.
      attentionMask: cat([pMask, completionMask], 1),
      completionMask,
      completionIds,
      completionLength: C,
    };
  });
}

/** A [n] int64 tensor of one value (helper for tests). */
export function fullIds(n: number, v: number): Tensor {
  return full([n], v, { dtype: "int64" });
}
