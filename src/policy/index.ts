// The policy layer: a model of any family with its tokenizer and prompt,
// prompt encoding and collation, rollouts, and the shared classification path.
export * from "./classify.js";
export * from "./collate.js";
export * from "./encoder.js";
export * from "./policy.js";
export * from "./rollout.js";
export * from "./image_cache.js";
