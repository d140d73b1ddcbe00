// Finds a Python interpreter that imports torch, for reference timings.
// Honours $PYTHON; a version manager's python3 may come first on PATH and
// lack torch while Debian's python3-torch lives in /usr/bin/python3.
import { spawnSync } from "node:child_process";

export function findTorchPython(): string | null {
  const candidates = [process.env.PYTHON, "python3", "/usr/bin/python3", "python"].filter((c): c is string => !!c);
  for (const py of candidates) {
    const r = spawnSync(py, ["-c", "import torch"], { stdio: "ignore" });
    if (r.status === 0) return py;
  }
  return null;
}

/** Runs a Python script with args and returns the JSON object on its last stdout line. */
export function runPythonJson(python: string, script: string, args: string[]): Record<string, number> {
  const r = spawnSync(python, [script, ...args], { encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${python} ${script} failed (exit ${r.status}):\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as Record<string, number>;
}
