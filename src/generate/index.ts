export * from "./sampling.js";
export * from "./generate.js";
export * from "./stop.js";
