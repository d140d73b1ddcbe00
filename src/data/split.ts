// Stratified, seeded train/val/test split.
//
// - Examples that already carry a split keep it; the fractions apply to the rest.
// - Strata: the label set (sorted labels joined by "+", "safe" when empty) by
//   default, or any key (the synthetic set also separates its hard subset).
// - Within a stratum the unassigned examples are ordered by id, shuffled with
//   mulberry32 seeded by hash32(seed, stratum key) (see rng.ts), and cut by the
//   largest-remainder method: every split receives floor(f * n) or ceil(f * n)
//   of each stratum, so each class's share matches the fractions to within one
//   example per split. Ties in the remainders go to train, then val, then test.
// - Deterministic: the result depends only on the seed, the fractions and the
//   set of (id, labels) pairs, not on the order the rows were read in.
import { hash32, Rng } from "./rng.js";
import { type Example, SAFE_LABEL, SPLIT_NAMES, type SplitName } from "./types.js";

export interface SplitOptions {
  /** Seed of the shuffle (default 0). */
  seed?: number;
  /** Share of each split among the examples without one (default {train: 0.8, val: 0.1, test: 0.1}); must sum to 1. */
  fractions?: Partial<Record<SplitName, number>>;
  /** The stratum of an example (default `labelSetKey`). */
  stratifyBy?: (ex: Example) => string;
}

export const DEFAULT_SPLIT_FRACTIONS: Readonly<Record<SplitName, number>> = { train: 0.8, val: 0.1, test: 0.1 };

/** The label set as one string: "safe", "weapons", "nudity+weapons" (labels sorted). */
export function labelSetKey(ex: Pick<Example, "labels">): string {
  return ex.labels.length === 0 ? SAFE_LABEL : [...ex.labels].sort().join("+");
}

/** Checks the fractions (each in [0, 1], summing to 1 within 1e-6) and fills unspecified ones with 0. */
export function resolveFractions(fractions: Partial<Record<SplitName, number>> | undefined): Record<SplitName, number> {
  if (fractions === undefined) return { ...DEFAULT_SPLIT_FRACTIONS };
  const out = { train: 0, val: 0, test: 0 };
  for (const [k, v] of Object.entries(fractions)) {
    if (!SPLIT_NAMES.includes(k as SplitName)) throw new Error(`split fractions: unknown split '${k}'; expected train, val, test`);
    if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw new Error(`split fractions: ${k} must be a number in [0, 1], got ${v}`);
    out[k as SplitName] = v;
  }
  const sum = out.train + out.val + out.test;
  if (Math.abs(sum - 1) > 1e-6) throw new Error(`split fractions must sum to 1, got ${sum} (${JSON.stringify(fractions)})`);
  return out;
}

/** How many of n go to each split: floor of each share, the rest by largest remainder (ties: train, val, test). */
export function allocate(n: number, fractions: Record<SplitName, number>): Record<SplitName, number> {
  const exact = SPLIT_NAMES.map((s) => fractions[s] * n);
  const counts = exact.map(Math.floor);
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = SPLIT_NAMES.map((_, k) => k).sort((a, b) => exact[b] - counts[b] - (exact[a] - counts[a]) || a - b);
  for (const k of order) {
    if (left <= 0) break;
    counts[k]++;
    left--;
  }
  return { train: counts[0], val: counts[1], test: counts[2] };
}

/**
 * Returns new example objects (same order) with every split filled:
 * explicit splits kept, the others assigned by stratified seeded shuffle.
 */
export function assignSplits(examples: readonly Example[], opts: SplitOptions = {}): Example[] {
  const seed = opts.seed ?? 0;
  const fractions = resolveFractions(opts.fractions);
  const keyOf = opts.stratifyBy ?? labelSetKey;
  const strata = new Map<string, number[]>();
  examples.forEach((ex, k) => {
    if (ex.split !== undefined) return;
    const key = keyOf(ex);
    let list = strata.get(key);
    if (list === undefined) strata.set(key, (list = []));
    list.push(k);
  });
  const assigned = new Map<number, SplitName>();
  for (const [key, members] of [...strata.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    members.sort((a, b) => (examples[a].id < examples[b].id ? -1 : examples[a].id > examples[b].id ? 1 : a - b));
    new Rng(hash32("split", seed, key)).shuffle(members);
    const counts = allocate(members.length, fractions);
    let at = 0;
    for (const s of SPLIT_NAMES) {
      for (let j = 0; j < counts[s]; j++) assigned.set(members[at++], s);
    }
  }
  return examples.map((ex, k) => (ex.split !== undefined ? { ...ex } : { ...ex, split: assigned.get(k) }));
}

/** The examples of one split. */
export function examplesOfSplit(examples: readonly Example[], split: SplitName): Example[] {
  return examples.filter((e) => e.split === split);
}
