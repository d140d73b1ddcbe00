// The summary values of TensorBoard's Text and HParams dashboards, built as
// their own Python writers build them (tensorboard/plugins/text/metadata.py,
// tensorboard/plugins/hparams/{metadata,summary}.py), field by field:
//
// Text: Value { tag; tensor = TensorProto { dtype: DT_STRING (7); tensor_shape: {} (a scalar);
//                                            string_val: [utf-8 bytes] };
//               metadata.plugin_data = { plugin_name: "text"; content: TextPluginData{version 0} = empty } }
//
// HParams: Value { tag: "_hparams_/session_start_info" | "_hparams_/session_end_info";
//                  tensor = the plugin's NULL_TENSOR: { dtype: DT_FLOAT (1); tensor_shape { dim {} } }
//                           (a length-0 float vector, 6 bytes: 08 01 12 02 12 00);
//                  metadata.plugin_data = { plugin_name: "hparams"; content: HParamsPluginData } }
//   HParamsPluginData { int32 version = 1 (0); SessionStartInfo session_start_info = 3; SessionEndInfo session_end_info = 4; }
//   SessionStartInfo  { map<string, google.protobuf.Value> hparams = 1; double start_time_secs = 5; }
//   SessionEndInfo    { Status status = 1 (1 success, 2 failure); double end_time_secs = 2; }
//   google.protobuf.Value { double number_value = 2; string string_value = 3; bool bool_value = 4; }  (a oneof:
//                           written even when 0 / "" / false)
// A map entry is a message { key = 1; value = 2 }. The dashboard takes the
// run's scalars as the session's metrics, so eval/* curves appear next to
// the hyperparameters without an experiment summary (which, written by
// several runs of one log folder, would hide the others' hyperparameters).
import type { PluginValue } from "./tensorboard.js";
import { asString, ProtoWriter, readFields } from "./protobuf.js";

const DT_FLOAT = 1;
const DT_STRING = 7;

/** TensorProto of a scalar string. */
export function stringTensor(text: string): Uint8Array {
  return new ProtoWriter().int64(1, DT_STRING).message(2, new ProtoWriter()).string(8, text).finish();
}

/** The strings of a DT_STRING TensorProto (its string_val), for reading summaries back. */
export function decodeStringTensor(tensor: Uint8Array): string[] {
  const fields = readFields(tensor, "TensorProto");
  const dtype = fields.find((f) => f.field === 1);
  if (!dtype || Number(dtype.value) !== DT_STRING) throw new Error(`TensorProto: expected dtype DT_STRING (${DT_STRING}), got ${dtype ? String(dtype.value) : "none"}`);
  return fields.filter((f) => f.field === 8).map((f) => asString(f.value as Uint8Array));
}

/** The hparams plugin's placeholder tensor (its summaries carry their data in the metadata). */
export const NULL_TENSOR: Uint8Array = new ProtoWriter().int64(1, DT_FLOAT).message(2, new ProtoWriter().message(2, new ProtoWriter())).finish();

/** A text summary value (rendered as Markdown by the Text dashboard). */
export function textValue(tag: string, markdown: string): PluginValue {
  return { tag, plugin: { name: "text", content: new Uint8Array(0) }, tensor: stringTensor(markdown) };
}

export type HParamValue = number | string | boolean;

export const SESSION_START_TAG = "_hparams_/session_start_info";
export const SESSION_END_TAG = "_hparams_/session_end_info";

function protobufValue(v: HParamValue): ProtoWriter {
  const w = new ProtoWriter();
  if (typeof v === "number") return w.double(2, v);
  if (typeof v === "string") return w.string(3, v);
  return w.bool(4, v);
}

/** The session_start_info summary: every hyperparameter (keys sorted, so files are reproducible). */
export function hparamsStartValue(hparams: Record<string, HParamValue>, startTimeSecs: number): PluginValue {
  const start = new ProtoWriter();
  for (const key of Object.keys(hparams).sort()) {
    const v = hparams[key];
    if (typeof v !== "number" && typeof v !== "string" && typeof v !== "boolean") throw new Error(`hparams: '${key}' must be a number, string or boolean, got ${typeof v}`);
    start.message(1, new ProtoWriter().string(1, key).message(2, protobufValue(v)));
  }
  start.double(5, startTimeSecs);
  return { tag: SESSION_START_TAG, plugin: { name: "hparams", content: new ProtoWriter().message(3, start).finish() }, tensor: NULL_TENSOR };
}

export type SessionStatus = "success" | "failure";

/** The session_end_info summary. */
export function hparamsEndValue(status: SessionStatus, endTimeSecs: number): PluginValue {
  const end = new ProtoWriter().int64(1, status === "success" ? 1 : 2).double(2, endTimeSecs);
  return { tag: SESSION_END_TAG, plugin: { name: "hparams", content: new ProtoWriter().message(4, end).finish() }, tensor: NULL_TENSOR };
}

/**
 * A nested config as flat hyperparameters: dotted keys ("grpo.lr"); numbers,
 * strings and booleans as they are; lists and objects as JSON text (the
 * dashboard has no list type); undefined keys left out.
 */
export function flattenHParams(config: unknown, prefix = ""): Record<string, HParamValue> {
  const out: Record<string, HParamValue> = {};
  if (config === null || typeof config !== "object" || Array.isArray(config)) throw new Error("flattenHParams: expected an object");
  for (const [k, v] of Object.entries(config as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v === undefined) continue;
    if (typeof v === "number" || typeof v === "string" || typeof v === "boolean") out[key] = v;
    else if (v !== null && typeof v === "object" && !Array.isArray(v)) Object.assign(out, flattenHParams(v, key));
    else out[key] = JSON.stringify(v);
  }
  return out;
}
