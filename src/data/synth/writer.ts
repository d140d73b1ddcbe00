// `vlm-grpo data synth`: writes the procedural demo dataset.
//
//   outDir/images/00000.png ...   RGB PNGs, imageSize x imageSize
//   outDir/manifest.jsonl         {"id","image","labels","split","hard","objects"} per line
//   outDir/README.md              what the set is (a procedural stand-in) and its counts
//
// Label plan: round(n * offensiveRate) offensive images, of which 15% carry
// both categories and the rest are split evenly between weapons and nudity;
// in every label group round(size * hardFraction) images are hard. The plan is
// shuffled with the seed, each image is drawn from its own generator
// (hash32(seed, index)), and splits are stratified on label set + hard. The
// same options give byte-identical files.
import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";

import { hash32, Rng } from "../rng.js";
import { assignSplits, labelSetKey, resolveFractions } from "../split.js";
import { type Example, SPLIT_NAMES, type SplitName } from "../types.js";
import { renderScene } from "./scene.js";

/** Defaults of the synthetic set (`data synth`, and the run config's demo section). */
export const SYNTH_DEFAULTS = Object.freeze({ n: 600, offensiveRate: 0.3, imageSize: 96, hardFraction: 0.2, bothFraction: 0.15 });

export interface SynthOptions {
  /** Output folder (created; must be empty unless `overwrite`). */
  outDir: string;
  /** Number of images (default 600). */
  n?: number;
  /** Share of images with at least one category (default 0.3). */
  offensiveRate?: number;
  /** Seed; the same options give byte-identical output (default 0). */
  seed?: number;
  /** Width = height in pixels (default 96). */
  imageSize?: number;
  /** Share of each label group drawn as hard examples (default 0.2). */
  hardFraction?: number;
  /** Share of the offensive images that carry both categories (default 0.15). */
  bothFraction?: number;
  /** Split fractions (default 0.8 / 0.1 / 0.1). */
  fractions?: Partial<Record<SplitName, number>>;
  /** Replace a previous output in outDir (its images/, manifest.jsonl, README.md) instead of refusing a non-empty folder (default false). */
  overwrite?: boolean;
}

export interface SynthResult {
  outDir: string;
  manifest: string;
  n: number;
  /** Images per label set ("safe", "weapons", "nudity", "nudity+weapons"). */
  perLabelSet: Record<string, number>;
  hard: number;
  perSplit: Record<SplitName, number>;
  seconds: number;
}

/** One planned image. */
interface Planned {
  labels: string[];
  hard: boolean;
}

function checkOptions(o: SynthOptions): Required<Omit<SynthOptions, "fractions">> & { fractions: Record<SplitName, number> } {
  const n = o.n ?? SYNTH_DEFAULTS.n;
  const offensiveRate = o.offensiveRate ?? SYNTH_DEFAULTS.offensiveRate;
  const imageSize = o.imageSize ?? SYNTH_DEFAULTS.imageSize;
  const hardFraction = o.hardFraction ?? SYNTH_DEFAULTS.hardFraction;
  const bothFraction = o.bothFraction ?? SYNTH_DEFAULTS.bothFraction;
  const seed = o.seed ?? 0;
  if (typeof o.outDir !== "string" || o.outDir === "") throw new Error(`synth: outDir must be a folder path`);
  if (!Number.isInteger(n) || n < 1) throw new Error(`synth: n must be a positive integer, got ${n}`);
  for (const [k, v] of Object.entries({ offensiveRate, hardFraction, bothFraction })) {
    if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw new Error(`synth: ${k} must be in [0, 1], got ${v}`);
  }
  if (!Number.isInteger(imageSize) || imageSize < 16 || imageSize > 1024) throw new Error(`synth: imageSize must be an integer in [16, 1024], got ${imageSize}`);
  if (!Number.isInteger(seed)) throw new Error(`synth: seed must be an integer, got ${seed}`);
  return { outDir: o.outDir, n, offensiveRate, seed, imageSize, hardFraction, bothFraction, fractions: resolveFractions(o.fractions), overwrite: o.overwrite ?? false };
}

/** The label plan: exact counts per group, hard ones marked, shuffled by seed. */
export function planLabels(n: number, offensiveRate: number, bothFraction: number, hardFraction: number, seed: number): Planned[] {
  const nOff = Math.round(n * offensiveRate);
  const nBoth = Math.round(nOff * bothFraction);
  const nWeapons = Math.round((nOff - nBoth) / 2);
  const nNudity = nOff - nBoth - nWeapons;
  const groups: [string[], number][] = [
    [[], n - nOff],
    [["weapons"], nWeapons],
    [["nudity"], nNudity],
    [["nudity", "weapons"], nBoth],
  ];
  const plan: Planned[] = [];
  for (const [labels, count] of groups) {
    const nHard = Math.round(count * hardFraction);
    for (let k = 0; k < count; k++) plan.push({ labels, hard: k < nHard });
  }
  return new Rng(hash32("synth-plan", seed)).shuffle(plan);
}

function prepareOutDir(dir: string, overwrite: boolean): void {
  if (fs.existsSync(dir)) {
    const entries = fs.readdirSync(dir);
    if (entries.length > 0) {
      if (!overwrite) throw new Error(`synth: ${dir} is not empty; choose an empty folder or pass overwrite`);
      for (const e of ["images", "manifest.jsonl", "README.md"]) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
    }
  }
  fs.mkdirSync(path.join(dir, "images"), { recursive: true });
}

function readme(o: ReturnType<typeof checkOptions>, r: Omit<SynthResult, "seconds" | "outDir" | "manifest">): string {
  const sets = Object.entries(r.perLabelSet)
    .map(([k, v]) => `| ${k} | ${v} |`)
    .join("\n");
  return `# Synthetic demo dataset (procedural stand-in, not real data)

Every image here was drawn by a program (vlm-grpo's \`data synth\`) from flat
geometric shapes. It is a stand-in that lets the training pipeline run end to
end without real moderation data; it says nothing about how a model trained on
it behaves on real photographs, and it contains no real images of people or weapons.

- weapons: knife, pistol and rifle silhouettes.
- nudity: an unclothed figure, i.e. a body silhouette in a skin tone with no
  clothing shapes. Safe look-alikes: the same body wearing a shirt and
  trousers / shorts / a skirt.
- safe look-alikes: hammer, wrench, screwdriver, umbrella, hair dryer, drill, mug, bottle.
- hard subset (\`"hard": true\`): small objects, lower contrast, busier
  backgrounds, 15-40% of the decisive object hidden by occluders.

Generation: n=${o.n}, offensiveRate=${o.offensiveRate}, bothFraction=${o.bothFraction},
hardFraction=${o.hardFraction}, imageSize=${o.imageSize}, seed=${o.seed}. The same options
reproduce the same bytes.

| label set | images |
|---|---|
${sets}

Hard: ${r.hard}. Splits: ${SPLIT_NAMES.map((s) => `${s} ${r.perSplit[s]}`).join(", ")}.

\`manifest.jsonl\` fields: id, image (relative path), labels ([] = safe), split,
hard, objects (the shapes drawn, decisive ones first).
`;
}

/** Writes the synthetic dataset; see the file header. */
export async function synthesizeDataset(options: SynthOptions): Promise<SynthResult> {
  const t0 = performance.now();
  const o = checkOptions(options);
  const outDir = path.resolve(o.outDir);
  prepareOutDir(outDir, o.overwrite);
  const plan = planLabels(o.n, o.offensiveRate, o.bothFraction, o.hardFraction, o.seed);
  const digits = Math.max(5, String(o.n - 1).length);

  const objects: string[][] = new Array(plan.length);
  const pending = new Set<Promise<void>>();
  for (let i = 0; i < plan.length; i++) {
    const scene = renderScene({ labels: plan[i].labels, hard: plan[i].hard, size: o.imageSize }, new Rng(hash32("synth-image", o.seed, i)));
    objects[i] = scene.objects;
    const file = path.join(outDir, "images", `${String(i).padStart(digits, "0")}.png`);
    const job = sharp(scene.pixels, { raw: { width: o.imageSize, height: o.imageSize, channels: 3 } })
      .png({ compressionLevel: 6 })
      .toBuffer()
      .then((buf) => fs.promises.writeFile(file, buf));
    const tracked: Promise<void> = job.finally(() => pending.delete(tracked));
    pending.add(tracked);
    if (pending.size >= 16) await Promise.race(pending);
  }
  await Promise.all(pending);

  const examples: Example[] = plan.map((p, i) => {
    const id = String(i).padStart(digits, "0");
    return { id, image: { path: `images/${id}.png` }, labels: p.labels, hard: p.hard, source: { file: "manifest.jsonl", line: i + 1 } };
  });
  const split = assignSplits(examples, { seed: o.seed, fractions: o.fractions, stratifyBy: (e) => `${labelSetKey(e)}${e.hard ? "/hard" : ""}` });
  const lines = split.map((e, i) =>
    JSON.stringify({ id: e.id, image: (e.image as { path: string }).path, labels: e.labels, split: e.split, hard: e.hard, objects: objects[i] }),
  );
  const manifest = path.join(outDir, "manifest.jsonl");
  fs.writeFileSync(manifest, lines.join("\n") + "\n");

  const perLabelSet: Record<string, number> = {};
  for (const e of split) perLabelSet[labelSetKey(e)] = (perLabelSet[labelSetKey(e)] ?? 0) + 1;
  const perSplit = { train: 0, val: 0, test: 0 };
  for (const e of split) perSplit[e.split!]++;
  const summary = { n: o.n, perLabelSet, hard: plan.filter((p) => p.hard).length, perSplit };
  fs.writeFileSync(path.join(outDir, "README.md"), readme(o, summary));
  return { outDir, manifest, ...summary, seconds: (performance.now() - t0) / 1000 };
}

/** Runs synthesizeDataset and prints a short summary through `log` (default console.log). */
export async function runDataSynth(options: SynthOptions & { log?: (line: string) => void }): Promise<SynthResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const r = await synthesizeDataset(options);
  log(`wrote ${r.n} synthetic images to ${r.outDir} in ${r.seconds.toFixed(1)} s (procedural stand-in, not real data)`);
  log(`label sets: ${Object.entries(r.perLabelSet).map(([k, v]) => `${k} ${v}`).join(", ")}; hard: ${r.hard}`);
  log(`splits: ${SPLIT_NAMES.map((s) => `${s} ${r.perSplit[s]}`).join(", ")}; manifest: ${r.manifest}`);
  return r;
}
