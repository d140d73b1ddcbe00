// The held-out evaluation GRPO runs every grpo.eval_every steps and at the
// end: greedy answers on a fixed, seeded sample of the val split, through
// the same classification path as `vlm-grpo eval` (policy/classify.ts) and
// the same metrics (eval/metrics.ts), logged as eval/*. The model is in eval
// mode meanwhile (no dropout), and greedy decoding draws no random numbers,
// so an evaluation does not change the training that follows it.
import type { RunConfig } from "../config/run_config.js";
import type { Example } from "../data/types.js";
import { computeMetrics, type Prediction } from "../eval/metrics.js";
import { classifyAcrossRanks } from "../eval/sharded.js";
import type { Policy } from "../policy/policy.js";
import { DataParallel } from "../torch/index.js";
import { epochPermutation } from "./data_order.js";

/** The first `n` examples of a seeded permutation of `val` (all when n = 0 or n >= its size): the same sample at every evaluation. */
export function heldOutSample(val: readonly Example[], n: number, seed: number): Example[] {
  if (n === 0 || n >= val.length) return [...val];
  return epochPermutation(val.length, seed, 0)
    .slice(0, n)
    .map((i) => val[i]);
}

/**
 * Evaluates the policy on `examples`: eval/recall, eval/fpr,
 * eval/unparseable_rate, eval/precision, eval/f2, eval/accuracy (ratios that
 * are 0/0 are left out) and eval/n. Split across the ranks of `dp` (every
 * rank gets the same figures).
 */
export async function heldOutEval(policy: Policy, examples: readonly Example[], cfg: RunConfig, dp: DataParallel = DataParallel.single()): Promise<Record<string, number>> {
  const wasTraining = policy.model.training;
  policy.model.eval();
  let results;
  try {
    results = await classifyAcrossRanks(dp, policy, examples, { batchSize: cfg.eval.batch_size, maxNewTokens: cfg.eval.max_new_tokens });
  } finally {
    policy.model.train(wasTraining);
  }
  const predictions: Prediction[] = results.map((r, k) => ({
    id: r.id,
    labels: examples[k].labels,
    predicted: r.parsed.kind === "offensive" ? { kind: "offensive", categories: r.parsed.categories } : r.parsed.kind === "safe" ? { kind: "safe" } : { kind: "unparseable" },
    score: r.score,
  }));
  const m = computeMetrics(predictions, { categories: policy.prompt.categories, unparseableAs: cfg.eval.unparseable_as });
  const out: Record<string, number> = { "eval/n": m.n };
  const put = (k: string, v: number | null) => {
    if (v !== null) out[`eval/${k}`] = v;
  };
  put("recall", m.recall);
  put("fpr", m.fpr);
  put("unparseable_rate", m.unparseable_rate);
  put("precision", m.precision);
  put("f2", m.f2);
  put("accuracy", m.accuracy);
  return out;
}
