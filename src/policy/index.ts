// The policy layer: a model of any family with its tokenizer and prompt,
// prompt encoding and collation, rollouts, and the shared classification path.
export * from "./classify.js";
export * from "./collate.js";
export * from "./encoder.js";
export * from "./policy.js";
export * from "./rollout.js";
export * from "./answer_probe.js";
export * from "./decide.js";
export * from "./model_card.js";
export * from "./thresholds.js";
export * from "./image_cache.js";
export * from "./augment.js";
