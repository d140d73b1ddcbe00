// Typed reads of config.json fields with defaults, for the Qwen2-VL configs.
// Every error names the file, the field and what was expected.

export type RawConfig = Record<string, unknown>;

export function isObject(v: unknown): v is RawConfig {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Reads fields of one JSON object; `where` names it in errors (e.g. "config.json: vision_config"). */
export class FieldReader {
  constructor(
    readonly raw: RawConfig,
    readonly where: string,
  ) {}

  private bad(key: string, want: string): never {
    throw new Error(`${this.where}: field "${key}" must be ${want}, got ${JSON.stringify(this.raw[key])}`);
  }

  /** Present and not null. */
  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  /** The first present key of `keys` (aliases), or undefined. */
  first(...keys: string[]): string | undefined {
    return keys.find((k) => this.has(k));
  }

  int(key: string, def: number, min = 1): number {
    const v = this.raw[key] ?? def;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) this.bad(key, `an integer >= ${min}`);
    return v;
  }

  num(key: string, def: number): number {
    const v = this.raw[key] ?? def;
    if (typeof v !== "number" || !Number.isFinite(v)) this.bad(key, "a finite number");
    return v;
  }

  bool(key: string, def: boolean): boolean {
    const v = this.raw[key] ?? def;
    if (typeof v !== "boolean") this.bad(key, "true or false");
    return v;
  }

  str(key: string, def: string): string {
    const v = this.raw[key] ?? def;
    if (typeof v !== "string") this.bad(key, "a string");
    return v;
  }

  /** An integer token id, or null (absent: `def`). */
  tokenId(key: string, def: number | null): number | null {
    const v = this.raw[key] === undefined ? def : this.raw[key];
    if (v === null) return null;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) this.bad(key, "a non-negative integer token id or null");
    return v;
  }

  /** A token id, a list of them, or null. */
  tokenIds(key: string, def: number | number[] | null): number | number[] | null {
    const v = this.raw[key] === undefined ? def : this.raw[key];
    if (v === null || (typeof v === "number" && Number.isInteger(v) && v >= 0)) return v as number | null;
    if (Array.isArray(v) && v.length > 0 && v.every((x) => Number.isInteger(x) && x >= 0)) return v as number[];
    this.bad(key, "a token id, a non-empty list of them, or null");
  }

  /** A list of integers >= min. */
  ints(key: string, def: readonly number[], min = 0): number[] {
    const v = this.raw[key] ?? def;
    if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= min)) this.bad(key, `a list of integers >= ${min}`);
    return [...(v as number[])];
  }

  obj(key: string): RawConfig | null {
    const v = this.raw[key];
    if (v === undefined || v === null) return null;
    if (!isObject(v)) this.bad(key, "an object");
    return v;
  }
}

/** Keys sorted (transformers writes config.json with sort_keys=True). */
export function sortKeys(o: RawConfig): RawConfig {
  return Object.fromEntries(
    Object.keys(o)
      .sort()
      .map((k) => [k, o[k]]),
  );
}

/** `o` without the given keys. */
export function omitKeys(o: RawConfig, keys: Iterable<string>): RawConfig {
  const drop = new Set(keys);
  return Object.fromEntries(Object.entries(o).filter(([k]) => !drop.has(k)));
}
