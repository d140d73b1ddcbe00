// Classification split across data-parallel ranks, results gathered back in
// order on every rank (rank 0 writes them). Whole batches are dealt out
// round-robin (batch b to rank b mod worldSize), so every batch holds the
// same images, with the same padding, as in one process: each answer and
// score is computed exactly as a one-process evaluation computes it, and the
// metrics are identical. The results travel as JSON (answer text and score;
// a double survives JSON exactly, NaN is sent as null) and are parsed again where they arrive.
import type { Example } from "../data/types.js";
import { type Classification, type ClassifyOptions, classifyExamples } from "../policy/classify.js";
import type { Policy } from "../policy/policy.js";
import { makeAnswerParser } from "../rewards/answer_parser.js";
import type { DataParallel } from "../torch/index.js";

/** Indices of `n` examples that rank `rank` of `worldSize` classifies: whole batches of `batchSize`, round-robin. */
export function batchShard(n: number, batchSize: number, worldSize: number, rank: number): number[] {
  const out: number[] = [];
  for (let start = rank * batchSize; start < n; start += worldSize * batchSize) {
    for (let i = start; i < Math.min(n, start + batchSize); i++) out.push(i);
  }
  return out;
}

/** classifyExamples over the ranks of `dp`; every rank returns all results, in the order of `examples`. */
export async function classifyAcrossRanks(dp: DataParallel, policy: Policy, examples: readonly Example[], opts: ClassifyOptions): Promise<Classification[]> {
  if (!dp.enabled) return classifyExamples(policy, examples, opts);
  const mine = batchShard(examples.length, opts.batchSize, dp.worldSize, dp.rank);
  const local = await classifyExamples(
    policy,
    mine.map((i) => examples[i]),
    opts,
  );
  // JSON keeps doubles exactly but turns NaN (an image that could not be read) into null.
  type Wire = [number, string, number | null, Record<string, number | null>, string | undefined];
  const num = (x: number | null) => (x === null ? Number.NaN : x);
  const parts = dp.allGatherJson(local.map((c, k): Wire => [mine[k], c.answer, Number.isNaN(c.score) ? null : c.score, c.categoryScores, c.error]));
  const parse = makeAnswerParser(policy.prompt.categories);
  const out: (Classification | undefined)[] = new Array(examples.length);
  for (const [i, answer, score, cats, error] of parts.flat() as Wire[]) {
    const categoryScores = Object.fromEntries(Object.entries(cats).map(([k, v]) => [k, num(v)]));
    out[i] = { id: examples[i].id, answer, parsed: parse(answer), score: num(score), categoryScores, ...(error !== undefined && error !== null ? { error } : {}) };
  }
  const missing = out.findIndex((c) => c === undefined);
  if (missing >= 0) throw new Error(`eval: no rank classified example ${missing} (${examples[missing].id}); the ranks disagree on the example list`);
  return out as Classification[];
}
