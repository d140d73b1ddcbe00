// The command as a user meets it: per-command help with that command's keys
// and defaults, -h and --version everywhere, one prefix per error message,
// exit code 3 for a GRPO run that is not learning, a used output folder
// refused, scripts that keep the caller's directory, and a README that names
// no file outside the repository.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const MAIN = path.join(ROOT, "dist/src/cli/main.js");
let tmp = "";
before(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-clih-"))));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[], opts: { cwd?: string; timeout?: number } = {}) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", timeout: opts.timeout ?? 120_000, cwd: opts.cwd, env: { ...process.env, CI: "true" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const COMMANDS = ["demo", "data", "init-model", "sft", "grpo", "eval", "predict", "generate", "config", "selfcheck"];

describe("help and version", () => {
  test("sft, grpo and eval --help list the config keys that command reads, with defaults, not every section's", () => {
    const sft = cli(["sft", "--help"]);
    assert.equal(sft.code, 0);
    assert.match(sft.out, /sft\.lr\s+number >= 0\s+default: 0\.0002/);
    assert.match(sft.out, /lora\.rank\s+integer >= 1\s+default: 8/);
    assert.match(sft.out, /--overwrite/);
    assert.match(sft.out, /--resume auto\|DIR/);
    for (const other of [/^ +grpo\./m, /^ +eval\./m, /^ +demo\./m]) assert.doesNotMatch(sft.out, other);
    const grpo = cli(["grpo", "--help"]);
    assert.match(grpo.out, /grpo\.on_stall\s+"stop" \| "warn"\s+default: "stop"/);
    assert.match(grpo.out, /grpo\.eval_every/);
    assert.match(grpo.out, /eval\.max_new_tokens/, "the eval keys GRPO's held-out evaluation reads");
    assert.match(grpo.out, /3 not learning/);
    for (const other of [/sft\./, /eval\.target_recall/, /demo\./]) assert.doesNotMatch(grpo.out, other);
    const ev = cli(["eval", "--help"]);
    assert.match(ev.out, /eval\.target_recall/);
    assert.match(ev.out, /--compare NAME=DIR/);
    for (const other of [/^ +grpo\./m, /^ +sft\./m, /^ +lora\./m]) assert.doesNotMatch(ev.out, other);
  });

  test("-h works for every command and shows that command's usage", () => {
    for (const c of COMMANDS) {
      const r = cli([c, "-h"]);
      assert.equal(r.code, 0, `${c} -h: ${r.err}`);
      assert.match(r.out, new RegExp(`^usage:[\\s\\S]*vlm-grpo ${c}\\b`), `${c} -h`);
    }
    assert.equal(cli(["-h"]).code, 0);
    assert.equal(cli(["config", "check", "-h"]).code, 0, "a subcommand's -h too");
  });

  test("--version and -V print the package's version", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    for (const f of ["--version", "-V"]) {
      const r = cli([f]);
      assert.equal(r.code, 0);
      assert.equal(r.out.trim(), `vlm-grpo ${pkg.version}`);
    }
  });
});

describe("errors", () => {
  test("an error message carries its prefix once", () => {
    const cases: [string[], RegExp][] = [
      [["eval"], /^vlm-grpo eval: give --model DIR/],
      [["init-model", "--preset", "tiny"], /^vlm-grpo init-model: --out DIR is required/],
      [["sft", "stray"], /^vlm-grpo sft: unexpected argument 'stray'/],
      [["data", "check"], /^vlm-grpo data check: expected one PATH/],
      [["grpo", "--data.path", path.join(tmp, "none.jsonl"), "--model", path.join(tmp, "none")], /^vlm-grpo grpo: /],
      [["predict", "--lora", "x", "img.png"], /^vlm-grpo predict: --model DIR is required/],
    ];
    for (const [args, first] of cases) {
      const r = cli(args);
      assert.notEqual(r.code, 0, args.join(" "));
      assert.match(r.err, first, args.join(" "));
      assert.doesNotMatch(r.err, /vlm-grpo ([\w-]+): (vlm-grpo )?\1[ :]/, `repeated prefix: ${r.err}`);
    }
  });
});

describe("runs", () => {
  before(() => {
    assert.equal(cli(["init-model", "--preset", "tiny", "--out", path.join(tmp, "model"), "--seed", "2"]).code, 0);
    assert.equal(cli(["data", "synth", "--out", path.join(tmp, "data"), "--n", "40", "--image-size", "32", "--seed", "1"]).code, 0);
  });
  const grpoArgs = (out: string) => ["grpo", "--model", path.join(tmp, "model"), "--data.path", path.join(tmp, "data", "manifest.jsonl"), "--output_dir", out, "--grpo.steps", "3", "--grpo.prompts_per_step", "2", "--grpo.num_generations", "2"];

  test("a GRPO run where every completion is unparseable exits 3, says why and does not claim success", () => {
    const out = path.join(tmp, "stalled");
    const r = cli([...grpoArgs(out), "--grpo.max_completion_length", "1", "--grpo.stall_steps", "2"]);
    assert.equal(r.code, 3, r.err + r.out);
    assert.match(r.err, /^vlm-grpo grpo: GRPO is not learning: for 2 steps in a row/m);
    assert.doesNotMatch(r.err, /\(done\)/, "the progress line does not say done either");
    assert.match(r.err, /every sampled completion was unparseable/);
    assert.doesNotMatch(r.out, /grpo done/);
    assert.equal(fs.existsSync(path.join(out, "final")), false);
  });

  test("a re-run into the used folder is refused (exit 1) and --resume with --overwrite is a usage error (exit 2)", () => {
    const out = path.join(tmp, "stalled");
    const again = cli([...grpoArgs(out), "--grpo.max_completion_length", "1"]);
    assert.equal(again.code, 1);
    assert.match(again.err, /output_dir .*stalled is not empty .*--resume auto.*--overwrite/);
    const both = cli([...grpoArgs(out), "--resume", "auto", "--overwrite"]);
    assert.equal(both.code, 2);
    assert.match(both.err, /exclude each other/);
  });

  test("scripts/run_sft.sh resolves relative paths against the caller's directory", () => {
    const work = path.join(tmp, "work");
    fs.mkdirSync(work);
    fs.cpSync(path.join(tmp, "model"), path.join(work, "my-model"), { recursive: true });
    fs.cpSync(path.join(tmp, "data"), path.join(work, "my-data"), { recursive: true });
    const r = spawnSync("bash", [path.join(ROOT, "scripts", "run_sft.sh"), "--model", "my-model", "--data.path", "my-data/manifest.jsonl", "--output_dir", "my-run", "--sft.max_steps", "1", "--sft.micro_batch_size", "2", "--sft.grad_accum", "1"], {
      cwd: work,
      encoding: "utf8",
      timeout: 300_000,
      env: { ...process.env, CI: "true" },
    });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.ok(fs.existsSync(path.join(work, "my-run", "final", "config.json")), "the run landed in the caller's my-run/");
    assert.equal(fs.existsSync(path.join(ROOT, "my-run")), false, "not in the repository");
  });
});

test("the README names no file outside the repository", () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  assert.doesNotMatch(readme, /shared\/DESIGN|DESIGN\.md/);
  // Every relative Markdown link points at a file of the repository.
  for (const m of readme.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
    const target = m[1];
    if (/^[a-z]+:/.test(target)) continue; // URLs
    assert.ok(fs.existsSync(path.join(ROOT, target)), `README links to ${target}, which is not in the repository`);
  }
});
