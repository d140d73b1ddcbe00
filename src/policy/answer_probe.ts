// Scores read from the model's answer distribution, with one teacher-forced
// forward pass per batch: the prompt followed by the canonical answer that
// names every category, "<answer>c1, c2, ..., cK" (configured order, as
// src/data/prompt.ts writes answers).
//
//   offensive score   P(offensive) = 1 - P(the answer is "safe"), where
//                     P(safe) is the probability of the answer's first token
//                     that sets "safe" apart from the category chain
//                     (for the usual tokenizers: the "safe" token right after
//                     "<answer>").
//   category score    P(category c_k is named) in a canonical answer:
//                       s_k = sum_{j=0}^{k-1} P(the answer starts "c1, ..., cj, c_k")
//                     i.e. the answer lists some leading run of the earlier
//                     categories and then c_k. Each term is the product of the
//                     token probabilities along "<answer>c1, ..., cj" (teacher
//                     forced) times the probability of the first token of ", c_k"
//                     that leaves the chain; once a category's first token is
//                     out, its remaining tokens are taken as given. Exact for
//                     one or two categories; with more it leaves out answers
//                     that skip an earlier category and then another before
//                     c_k (e.g. "c2, c3" for c3), so it is a lower bound there.
//
// Every string is tokenized whole and compared token by token with the chain,
// so merges across "<answer>" or ", " are handled by construction. Categories
// whose names start with the same token share that token's probability.
import { catImageInputs } from "../models/vlm.js";
import { cat, F, noGrad, tensor, tidy } from "../torch/index.js";
import type { PromptBatch } from "./collate.js";
import type { Policy } from "./policy.js";

/** One answer prefix scored against the chain: chain tokens [start, shared) teacher forced, then `next` (if any) at position `shared`. */
interface ProbePath {
  shared: number;
  next: number | null;
}

/** What to read from the forward pass, planned once per policy. */
export interface ProbePlan {
  /** Token ids of "<answer>" + every category joined by ", ". */
  chain: number[];
  /** Tokens every probed answer shares with the chain (the scored part starts after them). */
  start: number;
  safe: ProbePath;
  /** Per category, the paths whose probabilities sum to its score. */
  categories: ProbePath[][];
  categoryNames: string[];
}

const lcp = (a: readonly number[], b: readonly number[]) => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
};

/** Plans the probe for a policy's tokenizer and categories. */
export function planAnswerProbe(policy: Pick<Policy, "tokenizer" | "prompt">): ProbePlan {
  const enc = (s: string) => policy.tokenizer.encode(s, { addSpecialTokens: false });
  const cats = policy.prompt.categories;
  const chain = enc(`<answer>${cats.join(", ")}`);
  const strings: { text: string; owner: number | "safe" }[] = [{ text: "<answer>safe", owner: "safe" }];
  // Category k after the first j categories (j = 0..k): "<answer>c1, ..., cj, ck".
  cats.forEach((c, k) => {
    for (let j = 0; j <= k; j++) strings.push({ text: `<answer>${[...cats.slice(0, j), c].join(", ")}`, owner: k });
  });
  const toks = strings.map((s) => ({ ...s, ids: enc(s.text) }));
  const start = Math.min(...toks.map((t) => lcp(t.ids, chain)));
  const path = (ids: number[]): ProbePath => {
    const shared = lcp(ids, chain);
    return { shared, next: shared < ids.length ? ids[shared] : null };
  };
  const categories: ProbePath[][] = cats.map(() => []);
  let safe: ProbePath | undefined;
  for (const t of toks) {
    if (t.owner === "safe") safe = path(t.ids);
    else categories[t.owner].push(path(t.ids));
  }
  if (!safe || safe.next === null) throw new Error(`answer probe: the tokenizer encodes "<answer>safe" as a prefix of "<answer>${cats.join(", ")}"; cannot tell "safe" from the categories`);
  if (start === 0) throw new Error(`answer probe: the tokenizer shares no token between "<answer>safe" and "<answer>${cats[0]}"`);
  return { chain, start, safe, categories, categoryNames: [...cats] };
}

/** Scores of one prompt. */
export interface ProbeScores {
  /** P(offensive) = 1 - P(safe). */
  offensive: number;
  /** P(category named), in the policy's category order. */
  categories: number[];
}

/** The probe's scores for each prompt of a batch (no gradients; nothing kept). */
export function probeAnswers(policy: Policy, batch: PromptBatch, plan: ProbePlan = planAnswerProbe(policy)): ProbeScores[] {
  const { chain, start } = plan;
  // Token ids whose probabilities are read, and where: chain tokens at their own positions, plus each path's `next`.
  const wanted = [...new Set([...chain.slice(start), plan.safe.next!, ...plan.categories.flat().flatMap((p) => (p.next === null ? [] : [p.next]))])];
  const col = new Map(wanted.map((id, i) => [id, i]));
  const keepPositions = chain.length - start + 1; // predicting chain[start..] and the token after the chain
  const probs = noGrad(() =>
    tidy(() => {
      const b = batch.inputIds.size(0);
      const extra = tensor(Array.from({ length: b }, () => chain), { dtype: "int64", device: batch.inputIds.device });
      const ids = cat([batch.inputIds, extra], 1);
      const mask = cat([batch.attentionMask, extra.mul(0).add(1)], 1);
      const images = catImageInputs(batch.images);
      // The last `keepPositions` logits: position q predicts chain[start + q] (q = keepPositions - 1: the token after the chain).
      const all = policy.model.forward({ inputIds: ids, attentionMask: mask, ...(images ?? {}), logitsToKeep: keepPositions }).logits; // [B, keepPositions, V]
      const sel = F.softmax(all.float(), -1).indexSelect(2, tensor(wanted, { dtype: "int64", device: all.device }));
      return { flat: sel.toFlatArray(), b };
    }),
  );
  const W = wanted.length;
  const at = (row: number, position: number, id: number) => probs.flat[(row * keepPositions + (position - start)) * W + col.get(id)!];
  const pathProb = (row: number, p: ProbePath) => {
    let v = 1;
    for (let i = start; i < p.shared; i++) v *= at(row, i, chain[i]);
    return p.next === null ? v : v * at(row, p.shared, p.next);
  };
  const out: ProbeScores[] = [];
  for (let r = 0; r < probs.b; r++) {
    const pSafe = pathProb(r, plan.safe);
    out.push({
      offensive: Math.min(1, Math.max(0, 1 - pSafe)),
      categories: plan.categories.map((paths) => Math.min(1, paths.reduce((a, p) => a + pathProb(r, p), 0))),
    });
  }
  return out;
}
