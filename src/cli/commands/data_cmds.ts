// `vlm-grpo data check PATH` and `vlm-grpo data synth --out DIR`.
import { loadConfig } from "../../config/load.js";
import { runConfigSchema } from "../../config/run_config.js";
import { runDataCheck } from "../../data/check.js";
import { runDataSynth, SYNTH_DEFAULTS } from "../../data/synth/writer.js";
import { flag, has, numberFlag, parseArgs, UsageError } from "../args.js";

const USAGE = `usage:
  vlm-grpo data check PATH [--categories nudity,weapons] [--on-bad-row fail|skip] [--format auto|jsonl|csv|folder|parquet]
                      [--config FILE] [--data.label_map '{"porn": "nudity", "neutral": "safe"}'] [--data.KEY VALUE ...]
      counts per class and split, image size stats, and every bad row; every image is
      decoded in full (as training and predict do). Exit code: 0 no bad row, 3 some rows
      bad (listed), 1 the dataset cannot be read at all, 2 usage error
  vlm-grpo data synth --out DIR [--n ${SYNTH_DEFAULTS.n}] [--offensive-rate ${SYNTH_DEFAULTS.offensiveRate}] [--seed 0] [--image-size ${SYNTH_DEFAULTS.imageSize}] [--hard-fraction ${SYNTH_DEFAULTS.hardFraction}] [--overwrite]
      writes the procedural demo set (a stand-in for real data, see its README.md)`;

/** `data check`'s exit code when some rows are bad (each listed); the same code predict uses when some images fail. */
export const EXIT_BAD_ROWS = 3;

export async function dataCommand(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if ((sub === "check" || sub === "synth") && (rest.includes("--help") || rest.includes("-h"))) {
    console.log(USAGE);
    return 0;
  }
  if (sub === "check") {
    const p = parseArgs(rest, { categories: { value: true }, "on-bad-row": { value: true }, format: { value: true }, config: { value: true } }, { allowOverrides: true });
    if (p.positionals.length !== 1) throw new UsageError(`data check: expected one PATH\n${USAGE}`);
    const onBad = flag(p, "on-bad-row") ?? "skip";
    if (onBad !== "fail" && onBad !== "skip") throw new UsageError(`--on-bad-row: expected fail or skip, got '${onBad}'`);
    // The config's data section (categories, label_map, format), as training reads it.
    const overrides = [...p.overrides];
    const cats = flag(p, "categories");
    if (cats) overrides.push("--data.categories", JSON.stringify(cats.split(",").map((c) => c.trim())));
    if (flag(p, "format")) overrides.push("--data.format", flag(p, "format")!);
    const cfg = loadConfig(runConfigSchema, { file: flag(p, "config"), overrides });
    const report = await runDataCheck(p.positionals[0], { categories: cfg.data.categories, onBadRow: onBad, format: cfg.data.format, labelMap: cfg.data.label_map });
    return report.ok ? 0 : EXIT_BAD_ROWS;
  }
  if (sub === "synth") {
    const p = parseArgs(rest, { out: { value: true }, n: { value: true }, "offensive-rate": { value: true }, seed: { value: true }, "image-size": { value: true }, "hard-fraction": { value: true }, overwrite: { value: false } });
    const out = flag(p, "out");
    if (!out) throw new UsageError(`data synth: --out DIR is required\n${USAGE}`);
    await runDataSynth({
      outDir: out,
      n: numberFlag(p, "n", SYNTH_DEFAULTS.n, { int: true, min: 1 }),
      offensiveRate: numberFlag(p, "offensive-rate", SYNTH_DEFAULTS.offensiveRate, { min: 0, max: 1 }),
      seed: numberFlag(p, "seed", 0, { int: true }),
      imageSize: numberFlag(p, "image-size", SYNTH_DEFAULTS.imageSize, { int: true, min: 16 }),
      hardFraction: numberFlag(p, "hard-fraction", SYNTH_DEFAULTS.hardFraction, { min: 0, max: 1 }),
      overwrite: has(p, "overwrite"),
    });
    return 0;
  }
  console.log(USAGE);
  return sub === undefined || sub === "--help" || sub === "help" ? 0 : 2;
}
