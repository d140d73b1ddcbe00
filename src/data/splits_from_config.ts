// Loads a dataset and cuts its stratified train/val/test splits from the run
// config's `data` section (the field names are the config's; see
// src/config/run_config.ts for the defaults).
import { formatBadRows } from "./validate.js";
import { loadDataset } from "./load.js";
import { assignSplits, examplesOfSplit } from "./split.js";
import type { DatasetFormat, Example } from "./types.js";

/** The run config's `data` section (as far as loading and splitting go). */
export interface DataSection {
  path: string;
  format: "auto" | DatasetFormat;
  categories: string[];
  /** Dataset label -> category or "safe" (default none). */
  label_map?: Record<string, string>;
  on_bad_row: "fail" | "skip";
  split_seed: number;
  val_fraction: number;
  test_fraction: number;
}

export interface Splits {
  train: Example[];
  val: Example[];
  test: Example[];
  categories: string[];
  /** Rows skipped as bad (on_bad_row: skip). */
  dropped: number;
}

/** Loads and validates the dataset and cuts the stratified splits. */
export async function loadSplits(data: DataSection, log: (line: string) => void = () => {}): Promise<Splits> {
  if (!data.path) throw new Error("no dataset given (config key data.path or --data.path)");
  const ds = await loadDataset(data.path, { categories: data.categories, onBadRow: data.on_bad_row, format: data.format, labelMap: data.label_map });
  if (ds.dropped.length) log(`data: skipped ${ds.dropped.length} bad row(s):\n${formatBadRows(ds.dropped)}`);
  const fractions = { train: Math.max(0, 1 - data.val_fraction - data.test_fraction), val: data.val_fraction, test: data.test_fraction };
  const withSplits = assignSplits(ds.examples, { seed: data.split_seed, fractions });
  return {
    train: examplesOfSplit(withSplits, "train"),
    val: examplesOfSplit(withSplits, "val"),
    test: examplesOfSplit(withSplits, "test"),
    categories: [...data.categories],
    dropped: ds.dropped.length,
  };
}
