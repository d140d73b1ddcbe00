// Batches of encoded prompts: left-padded prompts for generation and scoring,
// right-padded prompt + target sequences with labels for SFT, and prompt +
// completion sequences for scoring completions (GRPO). Image tensors are
// concatenated per batch in prompt order (models/vlm.ts' ImageInputs layout).
import { catImageInputs, type ImageInputs } from "../models/vlm.js";
import { cat, type Tensor, tensor, tidy } from "../torch/index.js";
import type { EncodedPrompt } from "./encoder.js";

/** A left-padded prompt batch (generation). The prompts' image handles stay with the prompts. */
export interface PromptBatch {
  inputIds: Tensor;
  attentionMask: Tensor;
  /** Per prompt, its image tensors (borrowed from the EncodedPrompts). */
  images: (ImageInputs | null)[];
  /** Per prompt, how many image-token ids it holds. */
  imageTokens: number[];
  promptLengths: number[];
}

/** Frees what a PromptBatch owns (its ids and mask; the images belong to the prompts). */
export function disposePromptBatch(b: PromptBatch): void {
  b.inputIds.dispose();
  b.attentionMask.dispose();
}

/** Left-pads prompts into one batch. */
export function collatePrompts(prompts: readonly EncodedPrompt[], padId: number): PromptBatch {
  if (prompts.length === 0) throw new Error("collatePrompts: no prompts");
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
      images: prompts.map((p) => p.images),
      imageTokens: prompts.map((p) => p.imageTokens),
      promptLengths: prompts.map((p) => p.ids.length),
    };
  });
}

/** A right-padded prompt+target batch with labels (-100 outside the targets). */
export interface SftBatch {
  inputIds: Tensor;
  attentionMask: Tensor;
  labels: Tensor;
  /** The batch's images concatenated (owned by the batch), or null. */
  images: ImageInputs | null;
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
      images: catImageInputs(prompts.map((p) => p.images)),
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
  prompts: Pick<PromptBatch, "inputIds" | "attentionMask">,
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
