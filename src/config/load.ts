// Config loading: YAML file -> dotted CLI overrides -> schema validation ->
// the resolved config; plus dumping it back to YAML (saved beside each
// checkpoint) and --help text from the schema.
//
// Errors name where each bad value came from: "grpo.yaml:12: grpo.beta: ..."
// for file values, "--grpo.beta: ..." for overrides. YAML syntax errors name
// the file, line and column. YAML tags that would need custom types (e.g.
// !!js/function) are rejected: a config never executes code.
import fs from "node:fs";
import YAML, { isMap, isPair, isScalar, isSeq, LineCounter, type Node as YamlNode } from "yaml";
import { applyOverrides, parseOverrideArgs } from "./overrides.js";
import { type AnySchema, ConfigError, type Infer, type Shape, typeName, validate } from "./schema.js";

/** Options of {@link loadConfig}. */
export interface LoadOptions {
  /** YAML file to read. Default: none (only overrides and defaults). */
  file?: string;
  /** YAML text to use instead of reading `file` (`file` then only names it in errors). */
  text?: string;
  /** argv-style overrides, e.g. ["--grpo.beta", "0.04", "--sft.lora.rank=8"]. Default []. */
  overrides?: readonly string[];
}

/** A parsed YAML config and a function that maps a key path to "file:line". */
export interface ParsedYaml {
  data: Record<string, unknown>;
  locate: (path: readonly (string | number)[]) => string | undefined;
}

/**
 * Parses YAML text whose top level must be a mapping (an empty file is {}).
 * Throws a ConfigError with one "file:line:col: message" per problem.
 */
export function parseYamlConfig(text: string, file = "<config>"): ParsedYaml {
  const lc = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    throw new ConfigError(
      problems.map((e) => {
        const pos = e.linePos?.[0];
        const msg = e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
        return `${file}${pos ? `:${pos.line}:${pos.col}` : ""}: YAML error: ${msg}`;
      }),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    throw new ConfigError([`${file}: YAML error: ${(e as Error).message}`]);
  }
  if (data === null || data === undefined) data = {};
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError([`${file}: expected a mapping of keys at the top level, got ${Array.isArray(data) ? "a list" : typeof data}`]);
  }
  const locate = (path: readonly (string | number)[]): string | undefined => {
    let node: unknown = doc.contents;
    let line: number | undefined;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
        if (!pair) break;
        const k = pair.key as YamlNode | null;
        if (k?.range) line = lc.linePos(k.range[0]).line;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === "number") {
        const item = node.items[seg] as YamlNode | undefined;
        if (!item) break;
        if (item.range) line = lc.linePos(item.range[0]).line;
        node = item;
      } else break;
    }
    return line === undefined ? file : `${file}:${line}`;
  };
  return { data: data as Record<string, unknown>, locate };
}

/**
 * Reads `opts.file` (YAML), applies `opts.overrides`, validates against
 * `schema` filling defaults, and returns the resolved config. Throws a
 * ConfigError listing every problem, each naming the file line or override.
 */
export function loadConfig<S extends AnySchema>(schema: S, opts: LoadOptions = {}): Infer<S> {
  let parsed: ParsedYaml = { data: {}, locate: () => undefined };
  const file = opts.file ?? (opts.text !== undefined ? "<config>" : undefined);
  if (opts.text !== undefined || opts.file !== undefined) {
    let text = opts.text;
    if (text === undefined) {
      try {
        text = fs.readFileSync(opts.file as string, "utf8");
      } catch (e) {
        throw new ConfigError([`${opts.file}: cannot read config file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
      }
    }
    parsed = parseYamlConfig(text, file);
  }
  const overrides = parseOverrideArgs(opts.overrides ?? [], schema);
  const { value, sources } = applyOverrides(schema, parsed.data, overrides);
  const locate = (path: readonly (string | number)[]): string | undefined => {
    // The longest overridden prefix of `path` (an override of "a" covers "a.b").
    for (let n = path.length; n > 0; n--) {
      const src = sources.get(path.slice(0, n).join("."));
      if (src !== undefined) return src;
    }
    return parsed.locate(path);
  };
  return validate(schema, value, { file, locate });
}

/** Options of {@link dumpConfig}. */
export interface DumpOptions {
  /** When given, each key's doc is written as a comment above it. */
  schema?: AnySchema;
  /** A comment for the top of the file (e.g. "resolved config of run X"). */
  header?: string;
}

/** Serializes a resolved config as YAML (undefined keys dropped), optionally with docs as comments. */
export function dumpConfig(config: unknown, opts: DumpOptions = {}): string {
  const doc = new YAML.Document(JSON.parse(JSON.stringify(config ?? {})));
  if (opts.header) doc.commentBefore = opts.header.split("\n").map((l) => ` ${l}`).join("\n");
  if (opts.schema) attachDocs(doc.contents, opts.schema);
  return doc.toString({ lineWidth: 0 });
}

function attachDocs(node: unknown, schema: AnySchema): void {
  while (schema.kind === "optional" || schema.kind === "nullable") schema = schema.inner;
  if (schema.kind !== "object" || !isMap(node)) return;
  const shape = schema.shape as Shape;
  for (const pair of node.items) {
    if (!isPair(pair) || !isScalar(pair.key)) continue;
    const child = shape[String(pair.key.value)];
    if (!child) continue;
    if (child.doc) pair.key.commentBefore = ` ${child.doc}`;
    attachDocs(pair.value, child);
  }
}

/** Options of {@link describeSchema}. */
export interface DescribeOptions {
  /** Prefix of each key, e.g. "--" for CLI help. Default "". */
  prefix?: string;
}

/**
 * Help text: one line per leaf key (dotted path, type, default), its doc on
 * the next line, indented. Object keys with a doc get a heading line.
 */
export function describeSchema(schema: AnySchema, opts: DescribeOptions = {}): string {
  const rows: { key: string; type: string; def: string; doc?: string; heading?: boolean }[] = [];
  const walk = (node: AnySchema, path: string[], optional: boolean): void => {
    let inner = node;
    while (inner.kind === "optional" || inner.kind === "nullable") {
      if (inner.kind === "optional") optional = true;
      inner = inner.inner;
    }
    if (inner.kind === "object") {
      if (path.length > 0 && node.doc) rows.push({ key: path.join("."), type: "", def: "", doc: node.doc, heading: true });
      for (const [k, child] of Object.entries(inner.shape as Shape)) walk(child, [...path, k], false);
      return;
    }
    const holder = [node, inner].find((n) => "default" in n && (n as { default?: unknown }).default !== undefined) as { default: unknown } | undefined;
    const def = holder ? `default: ${JSON.stringify(holder.default)}` : optional ? "optional" : "required";
    rows.push({ key: path.join("."), type: typeName(node), def, doc: node.doc });
  };
  walk(schema, [], false);
  const prefix = opts.prefix ?? "";
  const leaves = rows.filter((r) => !r.heading);
  const kw = Math.max(0, ...leaves.map((r) => prefix.length + r.key.length));
  const tw = Math.max(0, ...leaves.map((r) => r.type.length));
  const lines: string[] = [];
  for (const r of rows) {
    if (r.heading) {
      lines.push(`${r.key}: ${r.doc}`);
      continue;
    }
    lines.push(`  ${(prefix + r.key).padEnd(kw)}  ${r.type.padEnd(tw)}  ${r.def}`.trimEnd());
    if (r.doc) lines.push(`      ${r.doc}`);
  }
  return lines.join("\n") + "\n";
}
