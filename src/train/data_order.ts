// Deterministic data order: epoch e visits the examples in a permutation
// drawn from (seed, e), so a resumed run needs only (epoch, index) to continue
// exactly where it stopped.
import { hash32, Rng } from "../data/rng.js";

export function epochPermutation(n: number, seed: number, epoch: number): number[] {
  const rng = new Rng(hash32("epoch", seed, epoch));
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** A cursor over epochs of shuffled indices. */
export class DataCursor {
  epoch: number;
  index: number;
  private perm: number[];
  constructor(
    private readonly n: number,
    private readonly seed: number,
    epoch = 0,
    index = 0,
  ) {
    if (n <= 0) throw new Error("DataCursor: the dataset is empty");
    this.epoch = epoch;
    this.index = index;
    this.perm = epochPermutation(n, seed, epoch);
  }
  /** The next `k` example indices (wrapping into the next epoch). */
  take(k: number): number[] {
    const out: number[] = [];
    while (out.length < k) {
      if (this.index >= this.n) {
        this.epoch++;
        this.index = 0;
        this.perm = epochPermutation(this.n, this.seed, this.epoch);
      }
      out.push(this.perm[this.index++]);
    }
    return out;
  }
  position(): { epoch: number; index: number } {
    return { epoch: this.epoch, index: this.index };
  }
}
