// Next-token selection: temperature, top-k and top-p filtering (in that order,
// as Hugging Face's generate applies its logits warpers), then greedy argmax or
// a multinomial draw. Everything runs as tensor ops over a [N, V] batch.
import { cat, F, type Generator, Tensor, tidy, zeros } from "../torch/index.js";

export interface SamplingOptions {
  /** Sample from the distribution (true) or take the argmax (false). Default: true when temperature > 0. */
  doSample?: boolean;
  /** Divides the logits before filtering and sampling. Default 1. Must be > 0 when sampling. */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 disables. Default 0. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p; 1 disables. Default 1. */
  topP?: number;
}

export interface ResolvedSampling {
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
}

export function resolveSampling(opts: SamplingOptions = {}): ResolvedSampling {
  const temperature = opts.temperature ?? 1;
  const doSample = opts.doSample ?? temperature > 0;
  const topK = opts.topK ?? 0;
  const topP = opts.topP ?? 1;
  if (doSample && !(temperature > 0)) throw new RangeError(`sampling: temperature must be > 0 when sampling (got ${temperature})`);
  if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`sampling: topK must be a non-negative integer (got ${topK})`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`sampling: topP must be in (0, 1] (got ${topP})`);
  return { doSample, temperature: doSample ? temperature : 1, topK, topP };
}

/** Applies temperature, then top-k, then top-p to float logits [N, V]; removed tokens get -inf. */
export function warpLogits(logits: Tensor, s: ResolvedSampling): Tensor {
  return tidy(() => {
    let scores = s.temperature === 1 ? logits.float() : logits.float().div(s.temperature);
    const vocab = scores.shape[scores.ndim - 1];
    if (s.topK > 0 && s.topK < vocab) {
      const kth = scores.topk(s.topK, -1, true, true).values.narrow(-1, s.topK - 1, 1);
      scores = scores.maskedFill(scores.lt(kth), -Infinity);
    }
    if (s.topP < 1) {
      // Ascending sort: drop the low tail whose cumulative mass is <= 1 - p, always keeping the top token.
      const { values, indices } = scores.sort(-1, false);
      const cumulative = F.softmax(values, -1).cumsum(-1);
      const removeSorted = cumulative.le(1 - s.topP);
      const n = removeSorted.shape[0];
      const sortedMask = cat([removeSorted.narrow(-1, 0, vocab - 1), zeros([n, 1], { dtype: "bool", device: scores.device })], -1);
      const remove = sortedMask.scatter(-1, indices, sortedMask);
      scores = scores.maskedFill(remove, -Infinity);
    }
    return scores;
  });
}

export interface NextTokens {
  /** Chosen token ids, int64 [N]. */
  tokens: Tensor;
  /**
   * Log-probability of each chosen token under the temperature-scaled full
   * distribution, log_softmax(logits / T) (TRL's definition of a completion's
   * log-prob under the policy; top-k/top-p do not renormalize it). [N] float32.
   */
  logProbs: Tensor;
}

/** Picks one next token per row of logits [N, V]. */
export function selectNext(logits: Tensor, s: ResolvedSampling, generator?: Generator): NextTokens {
  return tidy(() => {
    const scaled = s.temperature === 1 ? logits.float() : logits.float().div(s.temperature);
    let tokens: Tensor;
    if (s.doSample) {
      const probs = F.softmax(warpLogits(logits, s), -1);
      tokens = probs.multinomial(1, false, generator).squeeze(-1);
    } else {
      tokens = scaled.argmax(-1);
    }
    const logProbs = F.logSoftmax(scaled, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
    return { tokens, logProbs };
  });
}
