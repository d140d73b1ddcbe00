// Runs our `vlm-grpo` command (dist/src/cli/main.js) the way a user does, so
// peer tests depend on the CLI's contract rather than on trainer internals.
import { spawnSync } from "node:child_process";
import path from "node:path";

import { ROOT } from "./bridge.js";

const MAIN = path.join(ROOT, "dist/src/cli/main.js");

/** Runs `vlm-grpo <args>`; returns stdout, or throws with the command and the end of its output. */
export function vlmGrpo(args: readonly string[], timeoutMs = 600_000): string {
  const res = spawnSync(process.execPath, [MAIN, ...args], { cwd: ROOT, encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (res.status !== 0) {
    const tail = `${res.stdout ?? ""}\n${res.stderr ?? ""}`.trim().split("\n").slice(-30).join("\n");
    throw new Error(`vlm-grpo ${args.join(" ")} exited with ${res.status ?? res.signal}:\n${tail}`);
  }
  return res.stdout;
}
