// A small typed schema DSL for configs: declare once, get the TypeScript type
// (`Infer<typeof schema>`), defaults, validation with helpful errors, and help text.
//
//   const schema = s.object({
//     lr: s.number({ min: 0, default: 1e-4, doc: "learning rate" }),
//     loss_type: s.string({ enum: ["grpo", "dapo"], default: "dapo" }),
//     lora: s.object({ rank: s.number({ int: true, min: 1, default: 16 }) }),
//     seed: s.optional(s.number({ int: true })),
//   });
//   type Config = Infer<typeof schema>;  // { lr: number; loss_type: "grpo" | "dapo"; lora: { rank: number }; seed?: number }
//   const cfg = validate(schema, raw, { file: "grpo.yaml" });
//
// Semantics:
// - A missing key takes its default (deep-copied). A missing nested object is
//   validated as {} so its own defaults fill in. A missing key with no default
//   that is not optional is an error.
// - `s.optional(x)`: absent or null both mean "unset" and resolve to absent.
//   `s.nullable(x)`: null is kept as a value.
// - Every error is collected (not just the first), each one line:
//   "<where>: <path>: <problem>", where <where> is the file (or the override
//   that set the value, or file:line when a locator is given).
// - Unknown keys are errors that name the closest valid key (Levenshtein).

/** Phantom-typed base of every schema node. */
export interface SchemaBase<T> {
  readonly kind: string;
  /** One-line description for --help and dumped configs. */
  readonly doc?: string;
  /** Never set: carries the inferred type. */
  readonly __type?: T;
}

export interface NumberSchema extends SchemaBase<number> {
  readonly kind: "number";
  readonly min?: number;
  readonly max?: number;
  /** Require an integer. */
  readonly int?: boolean;
  readonly default?: number;
}
export interface StringSchema<T extends string = string> extends SchemaBase<T> {
  readonly kind: "string";
  /** Allowed values. */
  readonly enum?: readonly T[];
  /** Non-empty required. Default false. */
  readonly nonEmpty?: boolean;
  readonly default?: T;
}
export interface BooleanSchema extends SchemaBase<boolean> {
  readonly kind: "boolean";
  readonly default?: boolean;
}
export interface ArraySchema<I extends AnySchema = AnySchema> extends SchemaBase<Infer<I>[]> {
  readonly kind: "array";
  readonly item: I;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly default?: Infer<I>[];
}
export interface RecordSchema<V extends AnySchema = AnySchema> extends SchemaBase<Record<string, Infer<V>>> {
  readonly kind: "record";
  readonly value: V;
  readonly default?: Record<string, Infer<V>>;
}
export type Shape = { readonly [key: string]: AnySchema };
export interface ObjectSchema<S extends Shape = Shape> extends SchemaBase<InferShape<S>> {
  readonly kind: "object";
  readonly shape: S;
}
export interface OptionalSchema<I extends AnySchema = AnySchema> extends SchemaBase<Infer<I> | undefined> {
  readonly kind: "optional";
  readonly inner: I;
}
export interface NullableSchema<I extends AnySchema = AnySchema> extends SchemaBase<Infer<I> | null> {
  readonly kind: "nullable";
  readonly inner: I;
  readonly default?: Infer<I> | null;
}
export interface UnionSchema<O extends readonly AnySchema[] = readonly AnySchema[]> extends SchemaBase<Infer<O[number]>> {
  readonly kind: "union";
  readonly options: O;
  readonly default?: Infer<O[number]>;
}

/** Any schema node. */
export type AnySchema =
  | NumberSchema
  | StringSchema<string>
  | BooleanSchema
  | ArraySchema<any>
  | RecordSchema<any>
  | ObjectSchema<any>
  | OptionalSchema<any>
  | NullableSchema<any>
  | UnionSchema<any>;

/** The resolved (validated, defaults filled) type of a schema. */
export type Infer<S> = S extends SchemaBase<infer T> ? T : never;

type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends OptionalSchema<any> ? K : never }[keyof S];
type Simplify<T> = { [K in keyof T]: T[K] } & {};
/** The resolved type of an object shape: optional() keys become `?:`. */
export type InferShape<S extends Shape> = Simplify<
  { -readonly [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & { -readonly [K in OptionalKeys<S>]?: Exclude<Infer<S[K]>, undefined> }
>;

/** True when a node's type records a default (the constructors add `{ default: D }` when one is given). */
type HasDefault<S> = S extends { readonly default: infer D } ? (undefined extends D ? false : true) : false;
/**
 * What a user may write (YAML before validation): keys with defaults, optional
 * keys and nested objects may be left out; nested objects recursively so.
 */
export type InferInput<S> =
  S extends ObjectSchema<infer Sh>
    ? Simplify<
        { -readonly [K in keyof Sh as InputOptional<Sh[K]> extends true ? never : K]: InferInput<Sh[K]> } & {
          -readonly [K in keyof Sh as InputOptional<Sh[K]> extends true ? K : never]?: InferInput<Sh[K]> | null;
        }
      >
    : S extends OptionalSchema<infer I>
      ? InferInput<I> | null | undefined
      : Infer<S>;
type InputOptional<S> = S extends ObjectSchema<any> | OptionalSchema<any> ? true : HasDefault<S>;

// ---- constructors -------------------------------------------------------------

/** Adds `{ readonly default: D }` to a node's type when the options give a default (for InferInput). */
type WithDefault<O> = O extends { default: infer D } ? (undefined extends D ? {} : { readonly default: D }) : {};

/** Schema constructors. */
export const s = {
  number<const O extends { min?: number; max?: number; int?: boolean; default?: number; doc?: string } = {}>(o?: O): NumberSchema & WithDefault<O> {
    return { kind: "number", ...o } as NumberSchema & WithDefault<O>;
  },
  string<const E extends readonly string[] = readonly string[], const O extends { nonEmpty?: boolean; doc?: string; default?: string } = {}>(
    o?: O & { enum?: E; default?: string extends E[number] ? string : E[number] },
  ): StringSchema<string extends E[number] ? string : E[number]> & WithDefault<O> {
    return { kind: "string", ...o } as unknown as StringSchema<string extends E[number] ? string : E[number]> & WithDefault<O>;
  },
  boolean<const O extends { default?: boolean; doc?: string } = {}>(o?: O): BooleanSchema & WithDefault<O> {
    return { kind: "boolean", ...o } as BooleanSchema & WithDefault<O>;
  },
  array<I extends AnySchema, const O extends { minItems?: number; maxItems?: number; default?: Infer<I>[]; doc?: string } = {}>(
    item: I,
    o?: O,
  ): ArraySchema<I> & WithDefault<O> {
    return { kind: "array", item, ...o } as ArraySchema<I> & WithDefault<O>;
  },
  record<V extends AnySchema, const O extends { default?: Record<string, Infer<V>>; doc?: string } = {}>(value: V, o?: O): RecordSchema<V> & WithDefault<O> {
    return { kind: "record", value, ...o } as RecordSchema<V> & WithDefault<O>;
  },
  object<S extends Shape>(shape: S, o: { doc?: string } = {}): ObjectSchema<S> {
    return { kind: "object", shape, ...o };
  },
  optional<I extends AnySchema>(inner: I, o: { doc?: string } = {}): OptionalSchema<I> {
    return { kind: "optional", inner, doc: o.doc ?? inner.doc };
  },
  nullable<I extends AnySchema, const O extends { default?: Infer<I> | null; doc?: string } = {}>(inner: I, o?: O): NullableSchema<I> & WithDefault<O> {
    return { kind: "nullable", inner, doc: o?.doc ?? inner.doc, ...(o && "default" in o ? { default: o.default } : {}) } as NullableSchema<I> & WithDefault<O>;
  },
  union<const Opts extends readonly AnySchema[], const O extends { default?: Infer<Opts[number]>; doc?: string } = {}>(options: Opts, o?: O): UnionSchema<Opts> & WithDefault<O> {
    return { kind: "union", options, ...o } as UnionSchema<Opts> & WithDefault<O>;
  },
};

// ---- helpers --------------------------------------------------------------------

/** Levenshtein edit distance. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** The candidate nearest to `word` (case-insensitive edit distance), if reasonably near. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.ceil(Math.max(word.length, best.length) / 2)) ? best : undefined;
}

/** A path as users write it: "sft.lora.rank", "rewards[2].weight". */
export function formatPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out === "" ? p : `.${p}`;
  return out === "" ? "(root)" : out;
}

/** The type name of a schema as shown in errors and help ("number", "integer >= 1", '"a" | "b"'). */
export function typeName(schema: AnySchema): string {
  switch (schema.kind) {
    case "number": {
      const base = schema.int ? "integer" : "number";
      const r = [schema.min !== undefined ? `>= ${schema.min}` : "", schema.max !== undefined ? `<= ${schema.max}` : ""].filter(Boolean);
      return r.length ? `${base} ${r.join(", ")}` : base;
    }
    case "string":
      return schema.enum ? schema.enum.map((e) => JSON.stringify(e)).join(" | ") : "string";
    case "boolean":
      return "boolean";
    case "array":
      return `list of ${typeName(schema.item)}`;
    case "record":
      return `map of ${typeName(schema.value)}`;
    case "object":
      return "object";
    case "optional":
      return typeName(schema.inner);
    case "nullable":
      return `${typeName(schema.inner)} | null`;
    case "union":
      return (schema.options as AnySchema[]).map(typeName).join(" | ");
  }
}

/** Describes a given value for an error: its type and a short rendering. */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `list ${truncate(JSON.stringify(v))}`;
  if (typeof v === "object") return `object ${truncate(JSON.stringify(v))}`;
  if (typeof v === "string") return `string ${truncate(JSON.stringify(v))}`;
  return `${typeof v} ${String(v)}`;
}
const truncate = (t: string, n = 60) => (t.length > n ? t.slice(0, n - 3) + "..." : t);

/** Thrown by validate/loadConfig; `errors` holds one line per problem. */
export class ConfigError extends Error {
  readonly errors: string[];
  constructor(errors: string[]) {
    super(errors.length === 1 ? errors[0] : `${errors.length} config errors:\n  ${errors.join("\n  ")}`);
    this.name = "ConfigError";
    this.errors = errors;
  }
}

/** Options of {@link validate}. */
export interface ValidateOptions {
  /** Prefix of every error (usually the config file name). */
  file?: string;
  /**
   * Where a path's value came from, e.g. "grpo.yaml:12" or "override --grpo.beta";
   * replaces `file` as the prefix when it returns a string.
   */
  locate?: (path: readonly (string | number)[]) => string | undefined;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const hasDefault = (schema: AnySchema): boolean => "default" in schema && (schema as { default?: unknown }).default !== undefined;

/** The value a missing key resolves to, or `missing` when it must be given. */
function missingValue(schema: AnySchema): { value: unknown } | "missing" {
  if (schema.kind === "optional") return { value: undefined };
  if (schema.kind === "nullable") {
    if ("default" in schema) return { value: structuredClone(schema.default) };
    return missingValue(schema.inner);
  }
  if (hasDefault(schema)) return { value: structuredClone((schema as { default: unknown }).default) };
  if (schema.kind === "object") return { value: {} }; // validated below, filling nested defaults
  return "missing";
}

class Validator {
  readonly errors: string[] = [];
  constructor(readonly opts: ValidateOptions) {}

  error(path: readonly (string | number)[], msg: string): void {
    const where = this.opts.locate?.(path) ?? this.opts.file;
    this.errors.push(`${where ? `${where}: ` : ""}${formatPath(path)}: ${msg}`);
  }

  /** Validates `v` against `schema`; returns the resolved value (defaults filled). */
  run(schema: AnySchema, v: unknown, path: (string | number)[]): unknown {
    switch (schema.kind) {
      case "number":
        if (typeof v !== "number" || Number.isNaN(v)) return this.wrongType(schema, v, path);
        if (schema.int && !Number.isInteger(v)) this.error(path, `expected an integer, got ${v}`);
        if (schema.min !== undefined && v < schema.min) this.error(path, `must be >= ${schema.min}, got ${v}`);
        if (schema.max !== undefined && v > schema.max) this.error(path, `must be <= ${schema.max}, got ${v}`);
        return v;
      case "string":
        if (typeof v !== "string") return this.wrongType(schema, v, path);
        if (schema.enum && !schema.enum.includes(v)) {
          const near = closest(v, schema.enum);
          this.error(path, `expected one of ${typeName(schema)}, got ${JSON.stringify(v)}${near ? `; did you mean ${JSON.stringify(near)}?` : ""}`);
        } else if (schema.nonEmpty && v === "") this.error(path, "must not be empty");
        return v;
      case "boolean":
        if (typeof v !== "boolean") return this.wrongType(schema, v, path);
        return v;
      case "array": {
        if (!Array.isArray(v)) return this.wrongType(schema, v, path);
        if (schema.minItems !== undefined && v.length < schema.minItems) this.error(path, `expected at least ${schema.minItems} item(s), got ${v.length}`);
        if (schema.maxItems !== undefined && v.length > schema.maxItems) this.error(path, `expected at most ${schema.maxItems} item(s), got ${v.length}`);
        return v.map((x, i) => this.run(schema.item, x, [...path, i]));
      }
      case "record": {
        if (!isPlainObject(v)) return this.wrongType(schema, v, path);
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) out[k] = this.run(schema.value, x, [...path, k]);
        return out;
      }
      case "object":
        return this.object(schema, v, path);
      case "optional":
        if (v === undefined || v === null) return undefined;
        return this.run(schema.inner, v, path);
      case "nullable":
        if (v === null) return null;
        return this.run(schema.inner, v, path);
      case "union":
        return this.union(schema, v, path);
    }
  }

  private wrongType(schema: AnySchema, v: unknown, path: (string | number)[]): unknown {
    this.error(path, `expected ${typeName(schema)}, got ${describeValue(v)}`);
    return v;
  }

  private object(schema: ObjectSchema, v: unknown, path: (string | number)[]): unknown {
    if (!isPlainObject(v)) return this.wrongType(schema, v, path);
    const shape = schema.shape as Shape;
    const keys = Object.keys(shape);
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      if (!(k in shape)) {
        const near = closest(k, keys);
        this.error([...path, k], `unknown key${near ? `; did you mean "${near}"?` : ""} (valid keys: ${keys.join(", ")})`);
      }
    }
    for (const k of keys) {
      const child = shape[k];
      let value = v[k];
      // null (e.g. a YAML key with nothing after it) means "not given" unless the key is nullable.
      if (value === undefined || (value === null && child.kind !== "nullable")) {
        const m = missingValue(child);
        if (m === "missing") {
          if (value === undefined) this.error([...path, k], `missing required key (expected ${typeName(child)})`);
          else this.wrongType(child, value, [...path, k]);
          continue;
        }
        value = m.value;
        if (value === undefined) continue;
      }
      const r = this.run(child, value, [...path, k]);
      if (r !== undefined) out[k] = r;
    }
    return out;
  }

  private union(schema: UnionSchema, v: unknown, path: (string | number)[]): unknown {
    const options = schema.options as readonly AnySchema[];
    const attempts: string[][] = [];
    for (const o of options) {
      const sub = new Validator(this.opts);
      const r = sub.run(o, v, path);
      if (sub.errors.length === 0) return r;
      attempts.push(sub.errors);
    }
    // When exactly one option has the value's JS type, its errors are the useful ones.
    const sameKind = options.map((o, i) => [o, i] as const).filter(([o]) => kindMatches(o, v));
    if (sameKind.length === 1) this.errors.push(...attempts[sameKind[0][1]]);
    else this.error(path, `expected ${typeName(schema)}, got ${describeValue(v)}`);
    return v;
  }
}

/** Whether `v` has the JS type a schema node takes (ignoring ranges, enums, keys). */
function kindMatches(schema: AnySchema, v: unknown): boolean {
  switch (schema.kind) {
    case "number":
      return typeof v === "number";
    case "string":
      return typeof v === "string";
    case "boolean":
      return typeof v === "boolean";
    case "array":
      return Array.isArray(v);
    case "record":
    case "object":
      return isPlainObject(v);
    case "optional":
      return v === undefined || v === null || kindMatches(schema.inner, v);
    case "nullable":
      return v === null || kindMatches(schema.inner, v);
    case "union":
      return (schema.options as AnySchema[]).some((o) => kindMatches(o, v));
  }
}

/**
 * Checks `value` against `schema`, fills defaults, and returns the resolved
 * value. Throws a {@link ConfigError} listing every problem found.
 */
export function validate<S extends AnySchema>(schema: S, value: unknown, opts: ValidateOptions = {}): Infer<S> {
  const v = new Validator(opts);
  let input = value;
  if (input === undefined || input === null) {
    const m = missingValue(schema);
    input = m === "missing" ? input : m.value;
  }
  const out = v.run(schema, input, []);
  if (v.errors.length > 0) throw new ConfigError(v.errors);
  return out as Infer<S>;
}

/** Every key in `path` resolved through objects, records, optional/nullable; undefined if the path is not in the schema. */
export function schemaAt(schema: AnySchema, path: readonly string[]): AnySchema | undefined {
  let cur: AnySchema = schema;
  for (const seg of path) {
    while (cur.kind === "optional" || cur.kind === "nullable") cur = cur.inner;
    if (cur.kind === "object") {
      const next = (cur.shape as Shape)[seg];
      if (next === undefined) return undefined;
      cur = next;
    } else if (cur.kind === "record") cur = cur.value;
    else return undefined;
  }
  return cur;
}

/** The keys valid at an object path (for suggestions); [] if the path is not an object. */
export function keysAt(schema: AnySchema, path: readonly string[]): string[] {
  let node = schemaAt(schema, path);
  while (node && (node.kind === "optional" || node.kind === "nullable")) node = node.inner;
  return node?.kind === "object" ? Object.keys(node.shape) : [];
}
