// Which run-config keys each command reads, for its --help: `vlm-grpo sft
// --help` lists the keys SFT uses with their defaults, not every section's.
import { type AnySchema, type ObjectSchema, s, type Shape } from "./schema.js";
import { runConfigSchema } from "./run_config.js";

/** Top-level keys and sections (or "section.key" for part of one) per command. */
export const COMMAND_KEYS: Record<"sft" | "grpo" | "eval", readonly string[]> = {
  sft: ["model", "output_dir", "seed", "device", "dtype", "threads", "data", "prompt", "lora", "sft"],
  // GRPO's held-out evaluation reads three eval keys.
  grpo: ["model", "output_dir", "seed", "device", "dtype", "threads", "data", "prompt", "lora", "grpo", "eval.batch_size", "eval.max_new_tokens", "eval.unparseable_as"],
  eval: ["model", "output_dir", "device", "dtype", "data", "prompt", "eval"],
};

const unwrapObject = (x: AnySchema): ObjectSchema | undefined => {
  while (x.kind === "optional" || x.kind === "nullable") x = x.inner;
  return x.kind === "object" ? (x as ObjectSchema) : undefined;
};

/** The part of an object schema that `keys` name ("a" for a whole key or section, "a.b" for one key of a section), in schema order. */
export function pickKeys(schema: ObjectSchema, keys: readonly string[]): ObjectSchema {
  const shape = schema.shape as Shape;
  const out: Record<string, AnySchema> = {};
  for (const key of keys) {
    const [head, ...rest] = key.split(".");
    const child = shape[head];
    if (!child) throw new Error(`pickKeys: the schema has no key '${head}'`);
    if (rest.length === 0) {
      out[head] = child;
      continue;
    }
    const obj = unwrapObject(child);
    if (!obj) throw new Error(`pickKeys: '${head}' is not a section`);
    const prev = out[head] ? (out[head] as ObjectSchema).shape : {};
    const sub = pickKeys(obj, [rest.join(".")]);
    out[head] = s.object({ ...prev, ...(sub.shape as Shape) }, { doc: child.doc });
  }
  // Schema order, whatever the order of `keys`.
  const ordered: Record<string, AnySchema> = {};
  for (const k of Object.keys(shape)) if (k in out) ordered[k] = out[k];
  return s.object(ordered, { doc: schema.doc });
}

/** The run-config schema restricted to what `command` reads. */
export function commandSchema(command: keyof typeof COMMAND_KEYS): ObjectSchema {
  return pickKeys(runConfigSchema as unknown as ObjectSchema, COMMAND_KEYS[command]);
}
