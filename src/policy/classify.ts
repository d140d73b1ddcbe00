// The one classification path that evaluation, predict and the server share:
// a greedy answer per image, parsed into a decision, plus a score,
// P(offensive) = 1 - P(the answer starts with "safe"), read from the model's
// next-token distribution right after "<answer>" (one extra prefill per batch).
import type { Example } from "../data/types.js";
import { catImageInputs } from "../models/vlm.js";
import { makeAnswerParser, type ParsedAnswer } from "../rewards/answer_parser.js";
import { cat, F, noGrad, tensor, tidy } from "../torch/index.js";
import { collatePrompts, disposePromptBatch, type PromptBatch } from "./collate.js";
import { disposeEncoded } from "./encoder.js";
import type { Policy } from "./policy.js";
import { LocalRollout } from "./rollout.js";

/** The ids after which the answer's first content token comes, and the first id of "safe" there. */
export function answerProbe(policy: Policy): { prefix: number[]; safeId: number } {
  const tok = policy.tokenizer;
  const prefix = tok.encode("<answer>", { addSpecialTokens: false });
  const full = tok.encode("<answer>safe", { addSpecialTokens: false });
  let safeId: number | undefined;
  if (full.length > prefix.length && prefix.every((v, i) => full[i] === v)) safeId = full[prefix.length];
  else safeId = tok.encode("safe", { addSpecialTokens: false })[0];
  if (safeId === undefined) throw new Error("classify: the tokenizer cannot encode the word 'safe'");
  return { prefix, safeId };
}

/** P(offensive) per prompt of a batch: 1 - softmax(logits after prompt + "<answer>")["safe"]. */
export function offensiveScores(policy: Policy, batch: PromptBatch, probe = answerProbe(policy)): number[] {
  return noGrad(() =>
    tidy(() => {
      const b = batch.inputIds.size(0);
      const extra = tensor(Array.from({ length: b }, () => probe.prefix), { dtype: "int64", device: batch.inputIds.device });
      const ids = cat([batch.inputIds, extra], 1);
      const mask = cat([batch.attentionMask, extra.mul(0).add(1)], 1);
      const images = catImageInputs(batch.images);
      const logits = policy.model.forward({ inputIds: ids, attentionMask: mask, ...(images ?? {}), logitsToKeep: 1 }).logits;
      const pSafe = F.softmax(logits.select(1, 0), -1).select(1, probe.safeId);
      return pSafe.toFlatArray().map((p) => 1 - p);
    }),
  );
}

export interface Classification {
  id: string;
  /** The greedy answer text. */
  answer: string;
  parsed: ParsedAnswer;
  /** P(offensive) from the answer's first token. */
  score: number;
}

export interface ClassifyOptions {
  /** Prompts per generation batch. */
  batchSize: number;
  /** Maximum answer tokens. */
  maxNewTokens: number;
  /** Called after each batch with the number of examples done. */
  onBatch?: (done: number) => void;
}

/** Classifies examples with the policy (in eval mode, no gradients). */
export async function classifyExamples(policy: Policy, examples: readonly Example[], opts: ClassifyOptions): Promise<Classification[]> {
  const parse = makeAnswerParser(policy.prompt.categories);
  const probe = answerProbe(policy);
  const rollout = new LocalRollout(policy);
  const out: Classification[] = [];
  for (let i = 0; i < examples.length; i += opts.batchSize) {
    const chunk = examples.slice(i, i + opts.batchSize);
    const encoded = await Promise.all(chunk.map((x) => policy.encoder.encodePrompt(x)));
    const batch = collatePrompts(encoded, policy.padTokenId);
    try {
      const completions = await rollout.rollout({ batch, numGenerations: 1, maxNewTokens: opts.maxNewTokens, doSample: false });
      const scores = offensiveScores(policy, batch, probe);
      chunk.forEach((x, k) => out.push({ id: x.id, answer: completions[k].text, parsed: parse(completions[k].text), score: scores[k] }));
    } finally {
      disposePromptBatch(batch);
      disposeEncoded(encoded);
    }
    opts.onBatch?.(out.length);
  }
  return out;
}
