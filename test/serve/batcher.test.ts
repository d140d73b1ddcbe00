// The batcher and its cache with a fake classifier (no model): batch sizes
// under concurrency, max_batch 1, identical bytes classified once, the cache
// window (entries and TTL), and the queue limit.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Classification } from "../../src/policy/classify.js";
import { Batcher, QueueFullError } from "../../src/serve/batcher.js";
import { TtlLru } from "../../src/serve/lru.js";

function fake(batches: number[][]) {
  return async (imgs: { id: string; bytes: Uint8Array }[]): Promise<Classification[]> => {
    batches.push(imgs.map((x) => x.bytes[0]));
    await new Promise((r) => setTimeout(r, 5));
    return imgs.map((x) => ({ id: x.id, answer: `a${x.bytes[0]}`, parsed: { kind: "safe", hasThink: false }, score: x.bytes[0] / 100, categoryScores: {} }));
  };
}
const opts = { maxBatch: 4, waitMs: 20, queueMax: 100, cacheEntries: 0, cacheTtlMs: 0 };

test("concurrent images are taken in batches of at most max_batch, each answer to its own caller", async () => {
  const batches: number[][] = [];
  const b = new Batcher(fake(batches), opts);
  const out = await Promise.all([1, 2, 3, 4, 5, 6].map((v) => b.submit(`id${v}`, new Uint8Array([v]))));
  assert.deepEqual(out.map((c) => [c.id, c.score]), [1, 2, 3, 4, 5, 6].map((v) => [`id${v}`, v / 100]));
  assert.deepEqual(batches, [[1, 2, 3, 4], [5, 6]]);
  const one: number[][] = [];
  const b1 = new Batcher(fake(one), { ...opts, maxBatch: 1 });
  await Promise.all([1, 2, 3].map((v) => b1.submit(`x${v}`, new Uint8Array([v]))));
  assert.deepEqual(one, [[1], [2], [3]]);
});

test("identical bytes: classified once per batch, and later answered from the cache", async () => {
  const batches: number[][] = [];
  let hits = 0;
  const b = new Batcher(fake(batches), { ...opts, cacheEntries: 10, cacheTtlMs: 60_000, onCacheHit: () => hits++ });
  const same = await Promise.all(["a", "b", "c"].map((id) => b.submit(id, new Uint8Array([7]))));
  assert.deepEqual(same.map((c) => c.id), ["a", "b", "c"]);
  assert.deepEqual(batches, [[7]]);
  const again = await b.submit("d", new Uint8Array([7]));
  assert.deepEqual([again.id, again.score, batches.length, hits], ["d", 0.07, 1, 1]);
});

test("the LRU evicts the least recently used entry and expires entries past the TTL", () => {
  let now = 0;
  const c = new TtlLru<number>(2, 1000, () => now);
  c.set("a", 1);
  c.set("b", 2);
  assert.equal(c.get("a"), 1); // a is now the most recent
  c.set("c", 3); // evicts b
  assert.deepEqual([c.get("a"), c.get("b"), c.get("c")], [1, undefined, 3]);
  now = 1001;
  assert.equal(c.get("a"), undefined);
  assert.equal(new TtlLru<number>(0, 0).get("x"), undefined);
});

test("a full queue refuses with QueueFullError instead of growing", async () => {
  const b = new Batcher(fake([]), { ...opts, maxBatch: 8, waitMs: 50, queueMax: 2 });
  const p = [b.submit("1", new Uint8Array([1])), b.submit("2", new Uint8Array([2]))];
  await assert.rejects(b.submit("3", new Uint8Array([3])), QueueFullError);
  assert.equal((await Promise.all(p)).length, 2);
});
