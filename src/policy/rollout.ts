// Rollouts: sampling G completions per prompt. Trainers and evaluation ask a
// RolloutBackend; LocalRollout runs src/generate on the policy's own weights
// (group sharing: one vision pass and one prompt prefill per prompt). A
// server-backed backend (vLLM or any OpenAI-compatible endpoint) is one more
// file implementing the same interface.
import { type FinishReason, generate } from "../generate/index.js";
import type { Generator } from "../torch/index.js";
import type { PromptBatch } from "./collate.js";
import type { Policy } from "./policy.js";

export interface RolloutRequest {
  /** Left-padded prompts (collatePrompts). */
  batch: PromptBatch;
  /** Completions per prompt (GRPO's G; 1 for evaluation). */
  numGenerations: number;
  maxNewTokens: number;
  /** false: greedy. Default: temperature > 0. */
  doSample?: boolean;
  temperature?: number;
  topP?: number;
  topK?: number;
  /** The sampling generator (reproducible rollouts); absent: the global one. */
  generator?: Generator;
  /** One vision pass and prompt prefill per prompt. Default true. */
  groupSharing?: boolean;
}

export interface RolloutCompletion {
  /** Index of the prompt in the batch; completions are prompt-major (prompt 0's group first). */
  promptIndex: number;
  tokenIds: number[];
  /** Decoded text, special tokens skipped. */
  text: string;
  /** Sampling-time log-prob of each token (under logits / temperature). */
  logProbs: number[];
  finishReason: FinishReason;
}

export interface RolloutBackend {
  rollout(req: RolloutRequest): Promise<RolloutCompletion[]>;
}

/** Rollouts with the policy's own weights, in this process. The model is put in eval mode for sampling and restored after. */
export class LocalRollout implements RolloutBackend {
  constructor(private readonly policy: Policy) {}

  async rollout(req: RolloutRequest): Promise<RolloutCompletion[]> {
    const p = this.policy;
    const wasTraining = p.model.training;
    p.model.eval();
    try {
      const out = generate(
        p.model,
        { inputIds: req.batch.inputIds, attentionMask: req.batch.attentionMask, images: req.batch.images },
        {
          numReturnSequences: req.numGenerations,
          maxNewTokens: req.maxNewTokens,
          doSample: req.doSample,
          temperature: req.temperature,
          topP: req.topP,
          topK: req.topK,
          eosTokenIds: p.encoder.eosTokenIds,
          padTokenId: p.padTokenId,
          decode: (ids) => p.tokenizer.decode(ids, { skipSpecialTokens: true }),
          generator: req.generator,
          shareGroup: req.groupSharing ?? true,
          suppressTokenIds: p.encoder.suppressTokenIds,
        },
      );
      return out.completions;
    } finally {
      p.model.train(wasTraining);
    }
  }
}
