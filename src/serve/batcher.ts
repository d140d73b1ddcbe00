// Dynamic batching: requests put images in one queue; a single worker takes
// up to maxBatch of them (waiting at most waitMs after the first arrives for
// others to join) and classifies them in ONE classifyExamples call. Only one
// batch runs at a time: the model is one set of weights on one device, and
// the forward is synchronous native work, so a second concurrent batch would
// only interleave, not overlap.
//
// Results are cached by the sha256 of the image bytes (the classification
// itself, not the encoded image: a hit skips the vision pass, generation and
// the probe alike). Identical bytes queued together are classified once.
import { createHash } from "node:crypto";
import type { Classification } from "../policy/classify.js";
import { TtlLru } from "./lru.js";

/** Runs one batch (the real one wraps classifyExamples). Result i belongs to images[i]. */
export type ClassifyBatch = (images: { id: string; bytes: Uint8Array }[]) => Promise<Classification[]>;

export interface BatcherOptions {
  maxBatch: number;
  waitMs: number;
  /** Images allowed to wait; beyond this submit() throws QueueFullError. */
  queueMax: number;
  cacheEntries: number;
  cacheTtlMs: number;
  /** Observers for /metrics. */
  onBatch?: (size: number, seconds: number) => void;
  onCacheHit?: () => void;
}

export class QueueFullError extends Error {
  constructor(readonly queueMax: number) {
    super(`the moderation queue is full (${queueMax} images waiting); retry later`);
  }
}

interface Pending {
  key: string;
  bytes: Uint8Array;
  resolve: (c: Classification) => void;
  reject: (e: Error) => void;
}

export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export class Batcher {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly cache: TtlLru<Classification>;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly run: ClassifyBatch,
    private readonly opts: BatcherOptions,
  ) {
    this.cache = new TtlLru(opts.cacheEntries, opts.cacheTtlMs);
  }

  /** Images waiting for a batch (not counting the one running). */
  get depth(): number {
    return this.queue.length;
  }

  /** Classifies one image (by its bytes); the id of the result is the caller's. */
  async submit(id: string, bytes: Uint8Array): Promise<Classification> {
    const key = sha256(bytes);
    const hit = this.cache.get(key);
    if (hit) {
      this.opts.onCacheHit?.();
      return { ...hit, id };
    }
    if (this.queue.length >= this.opts.queueMax) throw new QueueFullError(this.opts.queueMax);
    this.inFlight++;
    try {
      const c = await new Promise<Classification>((resolve, reject) => {
        this.queue.push({ key, bytes, resolve, reject });
        this.schedule();
      });
      return { ...c, id };
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Resolves when no image is queued or running. */
  idle(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((r) => this.idleWaiters.push(r));
  }

  private schedule(): void {
    if (this.running) return;
    if (this.queue.length >= this.opts.maxBatch) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      void this.runBatch();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.runBatch();
      }, this.opts.waitMs);
    }
  }

  private async runBatch(): Promise<void> {
    if (this.running || this.queue.length === 0) return;
    this.running = true;
    const taken = this.queue.splice(0, this.opts.maxBatch);
    // One forward per distinct image in the batch.
    const distinct = new Map<string, Pending[]>();
    for (const p of taken) distinct.set(p.key, [...(distinct.get(p.key) ?? []), p]);
    const keys = [...distinct.keys()];
    const t0 = performance.now();
    try {
      const results = await this.run(keys.map((k) => ({ id: k, bytes: distinct.get(k)![0].bytes })));
      this.opts.onBatch?.(keys.length, (performance.now() - t0) / 1000);
      keys.forEach((k, i) => {
        const c = results[i];
        if (c.error === undefined) this.cache.set(k, c);
        for (const p of distinct.get(k)!) p.resolve(c);
      });
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      for (const p of taken) p.reject(err);
    } finally {
      this.running = false;
      if (this.queue.length > 0) this.schedule();
    }
  }
}
