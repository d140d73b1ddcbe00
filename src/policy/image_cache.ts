// A byte-bounded, least-recently-used cache of processed images (the prompt
// encoder's; see encoder.ts). Processing an image (decode, resize, normalize)
// costs far more than reading it back, and each epoch of SFT and each GRPO
// step sees the same images again; but a processed image is large (SmolVLM's
// 17 tiles of 3 x 512 x 512 float32 are 51 MB), so an unbounded cache grows
// with the dataset. This one holds at most `maxBytes` and evicts the images
// used least recently.
//
// Compact storage (exact): a float32 tensor whose elements take at most 256
// distinct bit patterns (32,768 with 16-bit indices) is kept as its palette
// of values plus one 8-bit (16-bit) index per element, and rebuilt by
// gathering the palette. Distinct values are found on the int32 view of the
// bits, so the rebuilt tensor is bit-for-bit the processed one (-0 and NaN
// payloads included): the model sees exactly the pixels it would have
// without the cache. Image processors that map 8-bit pixels through a
// per-channel rescale and normalize (SmolVLM, CLIP-style) produce at most
// 256 values per channel, so pixels take a quarter of their float32 bytes.
// Other tensors (masks, grids) and tensors with too many values are kept as
// they are.
//
// Ownership: put() makes the cache's own handles (copies outside the C heap, compacted when exact and smaller)
// and get() returns new tensors the caller owns, so evicting an entry never
// frees a tensor in use.
import fs from "node:fs";
import os from "node:os";
import type { ImageInputs } from "../models/vlm.js";
import { cloneOutsideHeap, DTYPE_CODE, ELEMENT_SIZE, keep, type Tensor, tidy } from "../torch/index.js";
import { callT, callTs } from "../torch/tensor.js";

const FIELDS = ["pixelValues", "pixelAttentionMask", "imageGridThw"] as const;
type Field = (typeof FIELDS)[number];

/** One tensor as the cache keeps it. */
type Stored = { kind: "plain"; t: Tensor } | { kind: "palette"; palette: Tensor; indices: Tensor; shape: number[] };

interface Entry<M> {
  meta: M;
  fields: Partial<Record<Field, Stored>>;
  /** Bytes this entry holds (tensor storage plus an estimate of `meta`). */
  bytes: number;
}

export interface ImageCacheOptions {
  /** Budget in bytes; 0 disables the cache. */
  maxBytes: number;
  /** Palette-compress float32 tensors where exact (default true). */
  compact?: boolean;
  /** Bytes an entry's metadata holds beside its tensors (default 0). */
  metaBytes?: (meta: unknown) => number;
}

export interface ImageCacheStats {
  entries: number;
  /** Bytes held now. */
  bytes: number;
  maxBytes: number;
  hits: number;
  misses: number;
  /** hits / (hits + misses); NaN before the first lookup. */
  hitRate: number;
  evictions: number;
  /** Images too large for the whole budget (never cached). */
  oversized: number;
  /** Bytes held / bytes the same entries take as processed (1 without compaction). */
  storedFraction: number;
}

/** Bytes of a tensor's elements. */
export function tensorBytes(t: Tensor): number {
  return t.numel * ELEMENT_SIZE[t.dtype];
}

/** The memory this process may use: the cgroup limit when there is one, else physical RAM. */
export function availableMemoryBytes(): number {
  const total = os.totalmem();
  for (const file of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    try {
      const v = Number(fs.readFileSync(file, "utf8").trim());
      if (Number.isFinite(v) && v > 0 && v < total) return v;
    } catch {
      // no such file, or "max": no limit there
    }
  }
  return total;
}

/** The "auto" budget: 20% of the memory available to this process, at most 16 GiB. */
export function autoImageCacheBytes(): number {
  return Math.min(Math.floor(availableMemoryBytes() * 0.2), 16 * 2 ** 30);
}

const MAX_INDEX_16 = 32768;

/** Palette-compresses a float32 tensor when exact and smaller; else null. */
function compactFloat32(t: Tensor): Stored | null {
  if (t.dtype !== "float32" || t.numel < 1024) return null;
  return tidy(() => {
    const bits = callT("aten::view.dtype", t.contiguous().reshape([-1]), DTYPE_CODE.int32);
    const [values, inverse] = callTs("aten::_unique2", bits, false, true, false);
    const k = values.numel;
    if (k > MAX_INDEX_16) return null;
    const palette = cloneOutsideHeap(callT("aten::view.dtype", values, DTYPE_CODE.float32));
    // int16 indices are stored shifted by -32768 so all 32,768 fit.
    const indices = cloneOutsideHeap(k <= 256 ? inverse.to("uint8") : inverse.sub(MAX_INDEX_16).to("int16"));
    return { kind: "palette" as const, palette, indices, shape: [...t.shape] };
  }) as Stored | null;
}

function storedBytes(s: Stored): number {
  return s.kind === "plain" ? tensorBytes(s.t) : tensorBytes(s.palette) + tensorBytes(s.indices);
}

function materialize(s: Stored): Tensor {
  if (s.kind === "plain") return s.t.alias();
  return tidy(() => {
    const idx = s.indices.dtype === "uint8" ? s.indices.to("int32") : s.indices.to("int32").add(MAX_INDEX_16);
    return s.palette.indexSelect(0, idx).reshape(s.shape);
  });
}

function disposeStored(s: Stored): void {
  if (s.kind === "plain") s.t.dispose();
  else {
    s.palette.dispose();
    s.indices.dispose();
  }
}

/** A byte-bounded LRU cache of ImageInputs with metadata M, by key. */
export class ImageCache<M> {
  private readonly entries = new Map<string, Entry<M>>();
  private bytes = 0;
  private rawBytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private oversized = 0;
  private readonly rawOf = new Map<string, number>();

  constructor(private readonly opts: ImageCacheOptions) {
    if (!(opts.maxBytes >= 0) || !Number.isFinite(opts.maxBytes)) throw new Error(`ImageCache: maxBytes must be a finite number >= 0, got ${opts.maxBytes}`);
  }

  get enabled(): boolean {
    return this.opts.maxBytes > 0;
  }

  /** The entry's metadata and new tensors the caller owns, or undefined (a miss). Marks it most recently used. */
  get(key: string): { meta: M; inputs: ImageInputs } | undefined {
    const e = this.entries.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, e);
    const inputs: Partial<ImageInputs> = {};
    for (const f of FIELDS) {
      const s = e.fields[f];
      if (s) inputs[f] = materialize(s);
    }
    return { meta: e.meta, inputs: inputs as ImageInputs };
  }

  /**
   * Stores the cache's own copy of `inputs` (the caller keeps its tensors),
   * evicting least recently used entries to stay within the budget. An entry
   * larger than the whole budget is not stored.
   */
  put(key: string, meta: M, inputs: ImageInputs): void {
    if (!this.enabled) return;
    this.remove(key);
    const raw = FIELDS.reduce((n, f) => n + (inputs[f] ? tensorBytes(inputs[f]!) : 0), 0);
    const metaBytes = this.opts.metaBytes?.(meta) ?? 0;
    // Check the uncompressed size against the budget first: compressing what cannot fit anyway is wasted work.
    const compact = this.opts.compact ?? true;
    if (!compact && raw + metaBytes > this.opts.maxBytes) {
      this.oversized++;
      return;
    }
    const fields: Partial<Record<Field, Stored>> = {};
    for (const f of FIELDS) {
      const t = inputs[f];
      if (!t) continue;
      const st: Stored = (compact ? compactFloat32(t) : null) ?? { kind: "plain", t: cloneOutsideHeap(t) };
      // The cache's handles belong to no scope a caller may have open.
      if (st.kind === "plain") keep(st.t);
      else {
        keep(st.palette);
        keep(st.indices);
      }
      fields[f] = st;
    }
    const bytes = Object.values(fields).reduce((n, s) => n + storedBytes(s!), 0) + metaBytes;
    if (bytes > this.opts.maxBytes) {
      for (const s of Object.values(fields)) disposeStored(s!);
      this.oversized++;
      return;
    }
    while (this.bytes + bytes > this.opts.maxBytes && this.entries.size > 0) {
      const oldest = this.entries.keys().next().value as string;
      this.remove(oldest);
      this.evictions++;
    }
    this.entries.set(key, { meta, fields, bytes });
    this.rawOf.set(key, raw + metaBytes);
    this.bytes += bytes;
    this.rawBytes += raw + metaBytes;
  }

  private remove(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    for (const s of Object.values(e.fields)) disposeStored(s!);
    this.entries.delete(key);
    this.bytes -= e.bytes;
    this.rawBytes -= this.rawOf.get(key) ?? 0;
    this.rawOf.delete(key);
  }

  stats(): ImageCacheStats {
    const lookups = this.hits + this.misses;
    return {
      entries: this.entries.size,
      bytes: this.bytes,
      maxBytes: this.opts.maxBytes,
      hits: this.hits,
      misses: this.misses,
      hitRate: lookups ? this.hits / lookups : NaN,
      evictions: this.evictions,
      oversized: this.oversized,
      storedFraction: this.rawBytes > 0 ? this.bytes / this.rawBytes : 1,
    };
  }

  /** Frees every entry (the counters stay). */
  clear(): void {
    for (const k of [...this.entries.keys()]) this.remove(k);
  }
}

/** One line for logs: "image cache: 38 images, 1.2 of 4096 MiB (0.25 of their processed size); hit rate 0.95 (1900 of 2000); 0 evicted". */
export function describeImageCache(s: ImageCacheStats): string {
  const mib = (b: number) => (b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 2 : 0);
  if (s.maxBytes === 0) return "image cache: off (image_cache.max_mb 0)";
  const rate = Number.isNaN(s.hitRate) ? "n/a" : s.hitRate.toFixed(3);
  return (
    `image cache: ${s.entries} images, ${mib(s.bytes)} of ${mib(s.maxBytes)} MiB (${s.storedFraction.toFixed(2)} of their processed size); ` +
    `hit rate ${rate} (${s.hits} of ${s.hits + s.misses}); ${s.evictions} evicted` +
    (s.oversized ? `; ${s.oversized} larger than the budget, not cached` : "")
  );
}

/** Metrics for the run's sinks. */
export function imageCacheMetrics(s: ImageCacheStats): Record<string, number> {
  return {
    "image_cache/hit_rate": Number.isNaN(s.hitRate) ? 0 : s.hitRate,
    "image_cache/mib": s.bytes / 2 ** 20,
    "image_cache/entries": s.entries,
    "image_cache/evictions": s.evictions,
  };
}
