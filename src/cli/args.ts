// A small argv splitter: known flags of a command (with or without a value)
// are taken out; every other --dotted.key value pair is a config override;
// bare words are positionals. `-h` is `--help` wherever a command has --help.

export interface FlagSpec {
  /** Flag takes a value (--out DIR or --out=DIR). */
  value: boolean;
  /** May repeat (values collected in order). */
  repeat?: boolean;
}

export interface ParsedArgs {
  flags: Map<string, string[]>;
  /** argv-style config overrides, e.g. ["--grpo.beta", "0.04"]. */
  overrides: string[];
  positionals: string[];
}

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[], spec: Record<string, FlagSpec>, opts: { allowOverrides?: boolean } = {}): ParsedArgs {
  const flags = new Map<string, string[]>();
  const overrides: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] === "-h" && spec.help ? "--help" : argv[i];
    if (!a.startsWith("--") || a === "--") {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    const f = spec[name];
    if (f) {
      let v = "true";
      if (f.value) {
        if (eq >= 0) v = a.slice(eq + 1);
        else if (i + 1 < argv.length) v = argv[++i];
        else throw new UsageError(`--${name} needs a value`);
      } else if (eq >= 0) v = a.slice(eq + 1);
      const list = flags.get(name) ?? [];
      if (list.length && !f.repeat) throw new UsageError(`--${name} is given twice`);
      list.push(v);
      flags.set(name, list);
      continue;
    }
    if (!opts.allowOverrides) throw new UsageError(`unknown option --${name}; known: ${Object.keys(spec).map((k) => `--${k}`).join(", ")}`);
    overrides.push(a);
    if (eq < 0 && i + 1 < argv.length && !argv[i + 1].startsWith("--")) overrides.push(argv[++i]);
  }
  return { flags, overrides, positionals };
}

export const flag = (p: ParsedArgs, name: string): string | undefined => p.flags.get(name)?.[0];
export const has = (p: ParsedArgs, name: string): boolean => p.flags.has(name);

export function numberFlag(p: ParsedArgs, name: string, dflt: number, check: { int?: boolean; min?: number; max?: number } = {}): number {
  const v = flag(p, name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || (check.int && !Number.isInteger(n)) || (check.min !== undefined && n < check.min) || (check.max !== undefined && n > check.max)) {
    const want = `${check.int ? "an integer" : "a number"}${check.min !== undefined ? ` >= ${check.min}` : ""}${check.max !== undefined ? ` <= ${check.max}` : ""}`;
    throw new UsageError(`--${name}: expected ${want}, got '${v}'`);
  }
  return n;
}

/**
 * The message without the prefixes the CLI adds itself: errors raised deeper
 * often start with "vlm-grpo <command>: " or "<command>: ", and printing them
 * after the CLI's own "vlm-grpo <command>: " would say it twice.
 */
export function withoutPrefix(message: string, command: string): string {
  let m = message;
  for (;;) {
    const next = m.startsWith(`vlm-grpo ${command}: `) ? m.slice(`vlm-grpo ${command}: `.length) : m.startsWith(`${command}: `) ? m.slice(command.length + 2) : m;
    if (next === m) return m;
    m = next;
  }
}

/**
 * The line the CLI prints for an error of `command`: "vlm-grpo <command>:
 * <message>" with the message's own copy of that prefix removed, or
 * "vlm-grpo <command> <sub>: ..." when the message already names a
 * subcommand ("data check: expected one PATH").
 */
export function errorLine(command: string, message: string): string {
  const m = withoutPrefix(message, command);
  if (m.startsWith(`${command} `) && /^\S+: /.test(m.slice(command.length + 1))) return `vlm-grpo ${m}`;
  return `vlm-grpo ${command}: ${m}`;
}
