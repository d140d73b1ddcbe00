// A small LRU map with a time-to-live: the server's cache of classification
// results keyed by the sha256 of an image's bytes. A Map keeps insertion
// order, so re-inserting on every hit makes its first key the least recently
// used one.

export class TtlLru<V> {
  private readonly map = new Map<string, { value: V; at: number }>();

  /** `entries` 0 disables the cache; `ttlMs` 0 means entries never expire by age. */
  constructor(
    private readonly entries: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    this.map.delete(key);
    if (this.ttlMs > 0 && this.now() - hit.at > this.ttlMs) return undefined;
    this.map.set(key, hit);
    return hit.value;
  }

  set(key: string, value: V): void {
    if (this.entries <= 0) return;
    this.map.delete(key);
    this.map.set(key, { value, at: this.now() });
    while (this.map.size > this.entries) this.map.delete(this.map.keys().next().value as string);
  }
}
