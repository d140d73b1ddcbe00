// safetensors read and write (https://github.com/huggingface/safetensors):
// single files and Hugging Face sharded checkpoint folders. The pieces live
// in safetensors_header.ts (format + validation), safetensors_file.ts (one
// file, lazy reads, atomic writes) and safetensors_sharded.ts (folders).
export {
  SAFETENSORS_DTYPE_SIZE,
  MAX_HEADER_BYTES,
  SafetensorsFormatError,
  type SafetensorsEntry,
  type SafetensorsHeader,
  readSafetensorsHeader,
  safetensorsDType,
  dtypeOfSafetensors,
} from "./safetensors_header.js";
export { type TensorDict, type ReadOptions, type LoadOptions, SafetensorsFile, loadSafetensors, saveSafetensors, tensorBytes } from "./safetensors_file.js";
export {
  DEFAULT_MAX_SHARD_BYTES,
  type FolderOptions,
  type ShardedSaveOptions,
  SafetensorsFolder,
  loadSafetensorsFolder,
  saveSafetensorsSharded,
  planShards,
} from "./safetensors_sharded.js";
