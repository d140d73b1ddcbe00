// Dotted command-line overrides: ["--grpo.beta", "0.04", "--sft.lora.rank=8"].
//
// Each override names a schema path and a raw text. The text is parsed with
// the schema's type at that path in mind:
//   string            -> taken as written ("123" stays a string)
//   number            -> Number(text) when numeric, else kept as text (validation then names the override)
//   boolean           -> true/false (also yes/no, on/off, 1/0); a bare flag `--x` means true
//   list              -> a JSON list '["a","b"]', or comma-separated items a,b (each parsed as the item type)
//   object / map      -> a JSON object '{"rank": 8}'
//   null / ~          -> null (for optional keys: unset)
//   union or unknown  -> JSON if it parses (numbers, booleans, null, lists, objects), else the text
// Unknown paths are errors naming the closest valid key.
import { type AnySchema, ConfigError, closest, formatPath, keysAt, schemaAt } from "./schema.js";

/** One parsed override. */
export interface Override {
  /** Key path, e.g. ["sft", "lora", "rank"]. */
  path: string[];
  /** The value text as given (undefined for a bare flag). */
  raw: string | undefined;
  /** How it was written, for errors: "--sft.lora.rank". */
  source: string;
}

/**
 * Splits argv into overrides. Accepts `--a.b=value`, `--a.b value` and, for
 * boolean keys (when `schema` is given), a bare `--a.b`. Throws a ConfigError
 * listing every malformed argument.
 */
export function parseOverrideArgs(argv: readonly string[], schema?: AnySchema): Override[] {
  const out: Override[] = [];
  const errors: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--") || arg.length === 2) {
      errors.push(`unexpected argument ${JSON.stringify(arg)}: overrides look like --key.path=value or --key.path value`);
      continue;
    }
    const eq = arg.indexOf("=");
    const key = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const source = `--${key}`;
    const path = key.split(".");
    if (path.some((p) => p === "")) {
      errors.push(`${source}: empty key segment in "${key}"`);
      if (eq < 0 && i + 1 < argv.length && !argv[i + 1].startsWith("--")) i++;
      continue;
    }
    let raw: string | undefined;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) raw = argv[++i];
    else {
      const target = schema ? unwrap(schemaAt(schema, path)) : undefined;
      if (schema && target?.kind !== "boolean" && target !== undefined) {
        errors.push(`${source}: missing value (expected ${target.kind})`);
        continue;
      }
    }
    out.push({ path, raw, source });
  }
  if (errors.length > 0) throw new ConfigError(errors);
  return out;
}

const unwrap = (s: AnySchema | undefined): AnySchema | undefined => {
  while (s && (s.kind === "optional" || s.kind === "nullable")) s = s.inner;
  return s;
};

const NUMERIC = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const TRUE = new Set(["true", "yes", "on", "1"]);
const FALSE = new Set(["false", "no", "off", "0"]);

/** Parses text with no schema guidance: numbers, booleans, null, JSON lists/objects, else the text itself. */
export function parseLooseValue(raw: string): unknown {
  const t = raw.trim();
  if (NUMERIC.test(t)) return Number(t);
  if (t === "true" || t === "false") return t === "true";
  if (t === "null" || t === "~") return null;
  if (t.startsWith("[") || t.startsWith("{") || t.startsWith('"')) {
    try {
      return JSON.parse(t);
    } catch {
      return raw;
    }
  }
  return raw;
}

/**
 * Parses an override's text for the schema node it targets (see the file
 * header). Text that does not fit the type is returned as a string so that
 * validation reports it with the expected type; malformed JSON for a list or
 * object throws, naming `source`.
 */
export function parseOverrideValue(raw: string | undefined, target: AnySchema | undefined, source = "override"): unknown {
  if (raw === undefined) return true; // bare flag
  const t = raw.trim();
  if (target && (target.kind === "optional" || target.kind === "nullable") && (t === "null" || t === "~")) return null;
  const node = unwrap(target);
  if (!node) return parseLooseValue(raw);
  switch (node.kind) {
    case "string":
      return raw;
    case "number":
      return NUMERIC.test(t) ? Number(t) : raw;
    case "boolean":
      if (TRUE.has(t.toLowerCase())) return true;
      if (FALSE.has(t.toLowerCase())) return false;
      return raw;
    case "array":
      if (t.startsWith("[")) return parseJson(t, source, "list");
      if (t === "") return [];
      return t.split(",").map((item) => parseOverrideValue(item.trim(), node.item, source));
    case "object":
    case "record":
      if (t.startsWith("{")) return parseJson(t, source, "object");
      return raw;
    case "union":
      return parseLooseValue(raw);
    default:
      return parseLooseValue(raw);
  }
}

function parseJson(t: string, source: string, what: string): unknown {
  try {
    return JSON.parse(t);
  } catch (e) {
    throw new ConfigError([`${source}: not a valid JSON ${what}: ${(e as Error).message}`]);
  }
}

/**
 * Names the first unknown segment of `path` with the closest valid key, or
 * returns undefined when the path exists in the schema.
 */
export function unknownPathError(schema: AnySchema, path: readonly string[], source: string): string | undefined {
  for (let i = 0; i < path.length; i++) {
    if (schemaAt(schema, path.slice(0, i + 1)) !== undefined) continue;
    const prefix = path.slice(0, i);
    const keys = keysAt(schema, prefix);
    if (keys.length === 0) return `${source}: ${formatPath(prefix)} has no sub-keys (it is not an object), cannot set "${path.slice(i).join(".")}"`;
    const near = closest(path[i], keys);
    // Suggest the whole corrected path when the rest of it then exists ("sftt.lr" -> "sft.lr").
    const fixed = near === undefined ? undefined : schemaAt(schema, [...prefix, near, ...path.slice(i + 1)]) ? [...prefix, near, ...path.slice(i + 1)] : [...prefix, near];
    const suggestion = fixed ? `; did you mean "${fixed.join(".")}"?` : ` (valid keys${prefix.length ? ` under ${formatPath(prefix)}` : ""}: ${keys.join(", ")})`;
    return `${source}: unknown key "${path.join(".")}"${suggestion}`;
  }
  return undefined;
}

/**
 * Applies overrides to a copy of `config` (a plain object, as read from
 * YAML). Returns the new object and, per overridden path ("a.b"), its source.
 * Throws a ConfigError listing every unknown path or malformed value.
 */
export function applyOverrides(
  schema: AnySchema,
  config: Record<string, unknown>,
  overrides: readonly Override[],
): { value: Record<string, unknown>; sources: Map<string, string> } {
  const value = structuredClone(config);
  const sources = new Map<string, string>();
  const errors: string[] = [];
  for (const o of overrides) {
    const bad = unknownPathError(schema, o.path, o.source);
    if (bad) {
      errors.push(bad);
      continue;
    }
    let parsed: unknown;
    try {
      parsed = parseOverrideValue(o.raw, schemaAt(schema, o.path), o.source);
    } catch (e) {
      errors.push(...(e instanceof ConfigError ? e.errors : [String(e)]));
      continue;
    }
    let obj: Record<string, unknown> = value;
    for (const seg of o.path.slice(0, -1)) {
      const next = obj[seg];
      if (typeof next !== "object" || next === null || Array.isArray(next)) obj[seg] = {};
      obj = obj[seg] as Record<string, unknown>;
    }
    obj[o.path[o.path.length - 1]] = parsed;
    sources.set(o.path.join("."), o.source);
  }
  if (errors.length > 0) throw new ConfigError(errors);
  return { value, sources };
}
