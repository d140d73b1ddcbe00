// Rewards: the answer parser, built-in rewards, user reward modules and the registry.
export * from "./types.js";
export * from "./answer_parser.js";
export * from "./recall_reward.js";
export * from "./format_reward.js";
export * from "./category_bonus.js";
export * from "./user_module.js";
export * from "./registry.js";
export * from "./isolated_reward.js";
