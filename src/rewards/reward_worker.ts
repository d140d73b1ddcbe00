// The body of a reward worker thread (see isolated_reward.ts): imports one
// user reward module, then answers calls with the function's scores. Runs
// user code only; it never loads the tensor engine. Messages:
//   in  workerData  { modulePath, exportName, configDir, options }
//   out { type: "ready" } | { type: "load_error", message }
//   in  { type: "call", id, ctx }
//   out { type: "result", id, scores } | { type: "error", id, message }
import { parentPort, workerData } from "node:worker_threads";
import { loadUserFunction, type UserRewardFn } from "./user_module.js";

interface WorkerInput {
  modulePath: string;
  exportName: string;
  configDir: string;
  options: Record<string, unknown>;
}

const port = parentPort;
if (!port) throw new Error("reward_worker.js runs as a worker thread (isolated_reward.ts starts it)");
const input = workerData as WorkerInput;

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

let fn: UserRewardFn;
try {
  fn = await loadUserFunction(input.modulePath, input.exportName, input.configDir);
  port.postMessage({ type: "ready" });
} catch (e) {
  port.postMessage({ type: "load_error", message: messageOf(e) });
  process.exit(0);
}

port.on("message", async (msg: { type: "call"; id: number; ctx: Parameters<UserRewardFn>[0] }) => {
  if (msg?.type !== "call") return;
  let scores: unknown;
  try {
    scores = await fn(msg.ctx, input.options);
  } catch (e) {
    port.postMessage({ type: "error", id: msg.id, message: messageOf(e) });
    return;
  }
  try {
    port.postMessage({ type: "result", id: msg.id, scores });
  } catch (e) {
    // A value structured clone cannot copy (a function, a symbol, ...).
    port.postMessage({ type: "error", id: msg.id, message: `returned a value that cannot be sent back from its worker thread (${messageOf(e)}); return an array of numbers or nulls` });
  }
});
