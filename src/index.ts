// vlm-grpo's public API (package.json "main"): the tensor engine, model
// families and their registry, the policy layer, the run config, the
// trainers and the evaluation. The CLI (src/cli) is built on exactly these.
export * as torch from "./torch/index.js";
export * as models from "./models/index.js";
export * as policy from "./policy/index.js";
export * as data from "./data/index.js";
export { type RunConfig, runConfigSchema } from "./config/run_config.js";
export { loadConfig, dumpConfig } from "./config/load.js";
export { policyOptions } from "./config/policy_options.js";
export { runSft, type SftOptions, type SftResult } from "./train/sft.js";
export { runGrpo, type GrpoOptions, type GrpoResult } from "./train/grpo.js";
export { evaluateModel, runEvaluation, type EvalTarget, type ModelEvaluation } from "./eval/run_eval.js";
