// The layering of DESIGN.md, enforced: each folder of src/ imports only the
// folders below it (a value or a type import alike). Bottom to top:
//   torch -> nn, io -> models, data -> generate (over the model interface), rewards
//   -> policy -> config (run-config schema and its mapping to policy options)
//   -> eval -> train (uses eval for in-training evaluation), serve -> cli
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src");

const ALLOWED: Record<string, readonly string[]> = {
  torch: [],
  nn: ["torch"],
  io: ["torch"],
  models: ["torch", "nn", "io"],
  data: ["torch", "io"],
  generate: ["torch", "models"],
  rewards: ["torch", "data"],
  policy: ["torch", "nn", "io", "models", "data", "generate", "rewards"],
  config: ["torch", "nn", "io", "models", "data", "generate", "rewards", "policy"],
  eval: ["torch", "nn", "io", "models", "data", "generate", "rewards", "policy", "config"],
  train: ["torch", "nn", "io", "models", "data", "generate", "rewards", "policy", "config", "eval"],
  serve: ["torch", "nn", "io", "models", "data", "generate", "rewards", "policy", "config", "eval"],
  cli: ["torch", "nn", "io", "models", "data", "generate", "rewards", "policy", "config", "eval", "train", "serve"],
};

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []));
}

test("src/ folders import only the layers below them", () => {
  const bad: string[] = [];
  const layers = new Set<string>();
  for (const file of tsFiles(SRC)) {
    const rel = path.relative(SRC, file);
    const from = rel.split(path.sep)[0];
    if (from.endsWith(".ts")) continue; // src/index.ts: the package's entry re-exports everything
    layers.add(from);
    const text = fs.readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
      const target = path.relative(SRC, path.resolve(path.dirname(file), m[1]));
      const to = target.split(path.sep)[0];
      if (to === from || to.startsWith("..")) continue;
      if (!(ALLOWED[from] ?? []).includes(to)) bad.push(`${rel} imports ${m[1]} (${from} -> ${to})`);
    }
  }
  for (const l of layers) assert.ok(l in ALLOWED, `src/${l}/ has no place in the layering; add it to ALLOWED in this test and to the README's layout`);
  assert.deepEqual(bad, []);
});
