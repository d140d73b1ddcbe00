// The shared config field reader (../configs.ts), under the name this folder uses.
export { isObject, omitKeys, type RawConfig, Reader as FieldReader, sortKeys } from "../configs.js";
