// `vlm-grpo data check`: load a dataset, validate every row, and report what
// is in it (counts per class and split, image sizes) and what was refused.
// The default bad-row policy here is "skip" so that one run lists every
// problem; the report's `ok` is false when any row was refused (the command
// then exits non-zero). The checks are training's own (load.ts, validate.ts),
// every image decoded in full, so what passes here loads there.
import { formatBadRows, countByKind } from "./validate.js";
import { loadDataset, type LoadDatasetOptions } from "./load.js";
import { labelSetKey } from "./split.js";
import { type BadRowKind, type DatasetFormat, type DroppedRow, type Example, SAFE_LABEL, SPLIT_NAMES, type SplitName } from "./types.js";

export interface DataCheckOptions extends LoadDatasetOptions {
  /** Where report lines go (default console.log); pass `() => {}` to stay quiet. */
  log?: (line: string) => void;
}

/** min / median / max of a list of numbers (the median of an even count is the lower middle). */
export interface Stat3 {
  min: number;
  median: number;
  max: number;
}

export interface ClassCounts {
  examples: number;
  /** Examples carrying each category (a multi-label example counts in each), plus `safe`. */
  perClass: Record<string, number>;
}

export interface DataCheckReport {
  path: string;
  format: DatasetFormat;
  root: string;
  categories: string[];
  /** Rows read (kept + dropped). */
  rows: number;
  /** All kept examples, per class. */
  total: ClassCounts;
  /** Kept examples per label set ("safe", "weapons", "nudity+weapons"). */
  perLabelSet: Record<string, number>;
  /** Per split; `unassigned` = rows without a split (the trainer assigns them by seed). */
  perSplit: Record<SplitName | "unassigned", ClassCounts>;
  /** Examples flagged `hard`. */
  hard: number;
  /** Pixel sizes from the image headers; null when image checks were off. */
  imageSize: { width: Stat3; height: Stat3 } | null;
  dropped: DroppedRow[];
  droppedByKind: Partial<Record<BadRowKind, number>>;
  /** Files the image-folder reader passed over. */
  ignoredFiles: string[];
  /** True when no row was dropped. */
  ok: boolean;
}

export function stat3(values: readonly number[]): Stat3 {
  const s = [...values].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor((s.length - 1) / 2)], max: s[s.length - 1] };
}

function classCounts(examples: readonly Example[], categories: readonly string[]): ClassCounts {
  const perClass: Record<string, number> = { [SAFE_LABEL]: 0 };
  for (const c of categories) perClass[c] = 0;
  for (const e of examples) {
    if (e.labels.length === 0) perClass[SAFE_LABEL]++;
    for (const l of e.labels) perClass[l]++;
  }
  return { examples: examples.length, perClass };
}

/** Builds the report for a loaded dataset (exported for tests and other callers). */
export function buildReport(p: string, ds: Awaited<ReturnType<typeof loadDataset>>): DataCheckReport {
  const perLabelSet: Record<string, number> = {};
  for (const e of ds.examples) perLabelSet[labelSetKey(e)] = (perLabelSet[labelSetKey(e)] ?? 0) + 1;
  const perSplit = {} as Record<SplitName | "unassigned", ClassCounts>;
  for (const s of [...SPLIT_NAMES, "unassigned"] as const) {
    perSplit[s] = classCounts(
      ds.examples.filter((e) => (e.split ?? "unassigned") === s),
      ds.categories,
    );
  }
  const sized = ds.examples.filter((e) => e.size !== undefined);
  return {
    path: p,
    format: ds.format,
    root: ds.root,
    categories: ds.categories,
    rows: ds.examples.length + ds.dropped.length,
    total: classCounts(ds.examples, ds.categories),
    perLabelSet,
    perSplit,
    hard: ds.examples.filter((e) => e.hard === true).length,
    imageSize: sized.length === 0 ? null : { width: stat3(sized.map((e) => e.size!.width)), height: stat3(sized.map((e) => e.size!.height)) },
    dropped: ds.dropped,
    droppedByKind: countByKind(ds.dropped),
    ignoredFiles: ds.ignoredFiles,
    ok: ds.dropped.length === 0,
  };
}

const pct = (n: number, d: number) => (d === 0 ? "-" : `${((100 * n) / d).toFixed(1)}%`);

/** The report as text, one block per section. */
export function formatDataCheckReport(r: DataCheckReport): string {
  const out: string[] = [];
  out.push(`dataset ${r.path} (${r.format}, root ${r.root})`);
  out.push(`rows: ${r.rows}, kept: ${r.total.examples}, dropped: ${r.dropped.length}${r.hard > 0 ? `, hard: ${r.hard}` : ""}`);
  const classes = [SAFE_LABEL, ...r.categories];
  const w = Math.max(10, ...classes.map((c) => c.length));
  out.push("");
  out.push(`${"class".padEnd(w)} ${["all", ...SPLIT_NAMES, "unassigned"].map((s) => s.padStart(12)).join("")}`);
  for (const c of classes) {
    const cells = [r.total, ...SPLIT_NAMES.map((s) => r.perSplit[s]), r.perSplit.unassigned].map((cc) => `${cc.perClass[c] ?? 0}`.padStart(12));
    out.push(`${c.padEnd(w)} ${cells.join("")}  (${pct(r.total.perClass[c] ?? 0, r.total.examples)} of all)`);
  }
  out.push(`${"examples".padEnd(w)} ${[r.total, ...SPLIT_NAMES.map((s) => r.perSplit[s]), r.perSplit.unassigned].map((cc) => `${cc.examples}`.padStart(12)).join("")}`);
  const sets = Object.entries(r.perLabelSet).sort((a, b) => b[1] - a[1]);
  out.push("");
  out.push(`label sets: ${sets.map(([k, n]) => `${k} ${n}`).join(", ")}`);
  if (r.imageSize) {
    const s = r.imageSize;
    out.push(`image width  min/median/max: ${s.width.min} / ${s.width.median} / ${s.width.max} px`);
    out.push(`image height min/median/max: ${s.height.min} / ${s.height.median} / ${s.height.max} px`);
  } else {
    out.push("image sizes: not read (image checks off)");
  }
  if (r.ignoredFiles.length > 0) {
    const shown = r.ignoredFiles.slice(0, 5).join(", ");
    out.push(`ignored files (not images, or hidden): ${r.ignoredFiles.length}: ${shown}${r.ignoredFiles.length > 5 ? ", ..." : ""}`);
  }
  if (r.dropped.length > 0) {
    out.push("");
    out.push(`DROPPED ${r.dropped.length} row(s): ${Object.entries(r.droppedByKind).map(([k, n]) => `${k} ${n}`).join(", ")}`);
    out.push(formatBadRows(r.dropped));
  } else {
    out.push("no bad rows");
  }
  return out.join("\n");
}

/**
 * Loads `path`, prints the report through `log`, and returns it. Bad rows are
 * skipped and listed unless `onBadRow: "fail"` is passed (then the first
 * bad row set throws, as in training).
 */
export async function runDataCheck(p: string, opts: DataCheckOptions = {}): Promise<DataCheckReport> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const ds = await loadDataset(p, { ...opts, onBadRow: opts.onBadRow ?? "skip" });
  const report = buildReport(p, ds);
  log(formatDataCheckReport(report));
  return report;
}
