// Compiles the TypeScript and runs the test suite with node's test runner.
// Usage: node scripts/run-tests.mjs [--no-build] [--peers] [filter...]   (filters match test file paths)
// The core suite is every test but test/peers/; --peers runs only test/peers/
// (the comparisons with Python's transformers / PEFT / TRL / TensorBoard /
// safetensors, which need the venv of scripts/setup-peers.sh; see
// scripts/test-peers.sh), so that the core suite never depends on Python.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const args = process.argv.slice(2);
if (!args.includes("--no-build")) {
  const tsc = spawnSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", root], { stdio: "inherit" });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
}

function findTests(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? findTests(p) : e.name.endsWith(".test.js") ? [p] : [];
  });
}
const filters = args.filter((a) => !a.startsWith("--"));
// Only compiled tests whose TypeScript source still exists (dist/ may hold stale ones).
const hasSource = (f) => fs.existsSync(path.join(root, path.relative(path.join(root, "dist"), f)).replace(/\.js$/, ".ts"));
const peersDir = path.join(root, "dist/test/peers") + path.sep;
const peers = args.includes("--peers");
const files = findTests(path.join(root, "dist/test"))
  .filter(hasSource)
  .filter((f) => f.startsWith(peersDir) === peers)
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
const res = spawnSync(process.execPath, ["--test", "--test-concurrency=1", ...files], { stdio: "inherit", cwd: root });
process.exit(res.status ?? 1);
