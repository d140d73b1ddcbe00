// The one classification path that evaluation, predict and the server share:
// a greedy answer per image, parsed, plus scores read from the model's answer
// distribution (policy/answer_probe.ts): P(offensive) and, per category,
// P(category named). Turning this into a decision (flag or not, which
// categories) is policy/decide.ts's job, so every caller decides alike.
import type { Example } from "../data/types.js";
import { makeAnswerParser, type ParsedAnswer } from "../rewards/answer_parser.js";
import { type ProbePlan, planAnswerProbe, probeAnswers } from "./answer_probe.js";
import { collatePrompts, disposePromptBatch } from "./collate.js";
import { disposeEncoded, type EncodedPrompt } from "./encoder.js";
import type { Policy } from "./policy.js";
import { LocalRollout } from "./rollout.js";

export interface Classification {
  id: string;
  /** The greedy answer text ("" when the image could not be read). */
  answer: string;
  parsed: ParsedAnswer;
  /** P(offensive) from the answer distribution (NaN when the image could not be read). */
  score: number;
  /** P(category named) per category of the policy's prompt, in its order. */
  categoryScores: Record<string, number>;
  /** Set when the image could not be read or processed; nothing else is meaningful then. */
  error?: string;
}

export interface ClassifyOptions {
  /** Prompts per generation batch. */
  batchSize: number;
  /** Maximum answer tokens. */
  maxNewTokens: number;
  /** Called after each batch with the number of examples done (failed ones included). */
  onBatch?: (done: number) => void;
  /**
   * An image that cannot be read: "throw" (default) stops with its error;
   * "report" returns a Classification with `error` set and goes on with the rest.
   */
  onImageError?: "throw" | "report";
}

/** Classifies examples with the policy (in eval mode, no gradients), in input order. */
export async function classifyExamples(policy: Policy, examples: readonly Example[], opts: ClassifyOptions): Promise<Classification[]> {
  const parse = makeAnswerParser(policy.prompt.categories);
  const plan: ProbePlan = planAnswerProbe(policy);
  const rollout = new LocalRollout(policy);
  const cats = policy.prompt.categories;
  const out: Classification[] = [];
  for (let i = 0; i < examples.length; i += opts.batchSize) {
    const chunk = examples.slice(i, i + opts.batchSize);
    const settled = await Promise.allSettled(chunk.map((x) => policy.encoder.encodePrompt(x)));
    const encoded: EncodedPrompt[] = [];
    const slot: (number | string)[] = settled.map((s) => {
      if (s.status === "fulfilled") return encoded.push(s.value) - 1;
      return (s.reason as Error)?.message ?? String(s.reason);
    });
    const firstError = slot.find((s): s is string => typeof s === "string");
    if (firstError !== undefined && (opts.onImageError ?? "throw") === "throw") {
      disposeEncoded(encoded);
      throw new Error(firstError);
    }
    const results: Classification[] = [];
    if (encoded.length > 0) {
      const batch = collatePrompts(encoded, policy.padTokenId);
      try {
        const completions = await rollout.rollout({ batch, numGenerations: 1, maxNewTokens: opts.maxNewTokens, doSample: false });
        const scores = probeAnswers(policy, batch, plan);
        encoded.forEach((e, k) =>
          results.push({
            id: e.id,
            answer: completions[k].text,
            parsed: parse(completions[k].text),
            score: scores[k].offensive,
            categoryScores: Object.fromEntries(cats.map((c, j) => [c, scores[k].categories[j]])),
          }),
        );
      } finally {
        disposePromptBatch(batch);
        disposeEncoded(encoded);
      }
    }
    chunk.forEach((x, k) => {
      const s = slot[k];
      out.push(
        typeof s === "number"
          ? results[s]
          : { id: x.id, answer: "", parsed: { kind: "unparseable", reason: "image could not be read" }, score: Number.NaN, categoryScores: {}, error: s },
      );
    });
    opts.onBatch?.(out.length);
  }
  return out;
}
