// The dataset layer: formats (JSONL, CSV, image folder, Hugging Face parquet),
// validation, stratified splits, `data check`, and the synthetic demo set.
export * from "./types.js";
export { Rng, hash32 } from "./rng.js";
export { parseCsv, type CsvRecord, type CsvError, type CsvParseResult } from "./csv.js";
export { readJsonlManifest, readCsvManifest } from "./manifest.js";
export { readImageFolder, IMAGE_EXTENSIONS, type ImageFolderRows } from "./image_folder.js";
export { readParquetRows, splitFromParquetPath, type ParquetReadOptions } from "./parquet.js";
export {
  validateRows,
  checkCategoryList,
  normalizeLabels,
  normalizeSplit,
  parseLabelCell,
  applyBadRowPolicy,
  formatBadRows,
  formatSource,
  countByKind,
  type ValidateOptions,
  type ValidateResult,
} from "./validate.js";
export { loadDataset, detectFormat, type LoadDatasetOptions, type DetectedFormat } from "./load.js";
export { assignSplits, allocate, labelSetKey, resolveFractions, examplesOfSplit, DEFAULT_SPLIT_FRACTIONS, type SplitOptions } from "./split.js";
export { runDataCheck, buildReport, formatDataCheckReport, stat3, type DataCheckOptions, type DataCheckReport, type ClassCounts, type Stat3 } from "./check.js";
export { synthesizeDataset, runDataSynth, planLabels, type SynthOptions, type SynthResult } from "./synth/writer.js";
export { renderScene, type SceneSpec, type SceneResult } from "./synth/scene.js";
export { loadSplits, type DataSection, type Splits } from "./splits_from_config.js";
