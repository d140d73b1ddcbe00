// Per-layer key/value cache for incremental decoding.
//
// Keys and values of layer l are [B, numKvHeads, S, headDim]. Without autograd
// (generation), each layer keeps a buffer with spare capacity and new positions
// are copied in place (capacity doubles when full), so a decode step costs one
// copy of the new position instead of a concatenation of the whole history.
// With autograd on, updates concatenate (no in-place writes into tensors that
// a graph may have saved). Cached tensors are kept out of scopes and freed by
// dispose() or when replaced.
import { cat, empty, isGradEnabled, keep, Tensor, tensor } from "../torch/index.js";

export interface KVCacheOptions {
  /**
   * Extra positions allocated beyond the first update, and kept free by
   * repeatBatch / select (saves regrowth while decoding, e.g. maxNewTokens). Default 0.
   */
  reserve?: number;
}

interface LayerState {
  keys: Tensor;
  values: Tensor;
  /** Filled positions (<= keys.size(2)). */
  length: number;
}

export class KVCache {
  readonly numLayers: number;
  private readonly reserve: number;
  private readonly layers: (LayerState | null)[];

  constructor(numLayers: number, opts: KVCacheOptions = {}) {
    if (!Number.isInteger(numLayers) || numLayers < 1) throw new RangeError(`KVCache: numLayers must be a positive integer, got ${numLayers}`);
    this.numLayers = numLayers;
    this.reserve = opts.reserve ?? 0;
    this.layers = new Array(numLayers).fill(null);
  }

  /** Cached positions (of layer 0; every layer has the same after a full forward). */
  get length(): number {
    return this.layers[0]?.length ?? 0;
  }

  /** Cached positions of one layer. */
  layerLength(layer: number): number {
    return this.layers[this.checkLayer(layer)]?.length ?? 0;
  }

  /** Batch size of the cached tensors (0 when empty). */
  get batchSize(): number {
    return this.layers[0]?.keys.size(0) ?? 0;
  }

  private checkLayer(layer: number): number {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.numLayers) {
      throw new RangeError(`KVCache: layer ${layer} out of range (${this.numLayers} layers)`);
    }
    return layer;
  }

  /**
   * Appends k, v [B, Hkv, T, D] to layer `layer` and returns the full keys and
   * values [B, Hkv, S + T, D] (views owned by the current scope; the cache keeps
   * its own storage).
   */
  update(layer: number, k: Tensor, v: Tensor): { keys: Tensor; values: Tensor } {
    this.checkLayer(layer);
    if (k.ndim !== 4 || v.ndim !== 4) throw new Error(`KVCache.update: keys/values must be [B, heads, T, headDim], got [${k.shape}] and [${v.shape}]`);
    const st = this.layers[layer];
    const t = k.size(2);
    if (st) {
      const [b, h, , d] = st.keys.shape;
      if (k.size(0) !== b || k.size(1) !== h || k.size(3) !== d) {
        throw new Error(`KVCache.update: layer ${layer} holds [${b}, ${h}, *, ${d}] but got keys [${k.shape.join(", ")}]`);
      }
    }
    if (isGradEnabled()) {
      // Functional update: the result may be saved by autograd.
      const keys = st ? cat([st.keys.narrow(2, 0, st.length), k], 2) : k.clone();
      const values = st ? cat([st.values.narrow(2, 0, st.length), v], 2) : v.clone();
      this.replace(layer, { keys: keep(keys), values: keep(values), length: st ? st.length + t : t });
    } else {
      let cur = st;
      const need = (st?.length ?? 0) + t;
      if (!cur || need > cur.keys.size(2)) {
        const cap = cur ? Math.max(need, 2 * cur.keys.size(2)) : need + this.reserve;
        cur = this.grow(cur, k, v, cap);
        this.replace(layer, cur);
      }
      const view = (x: Tensor) => x.narrow(2, cur!.length, t);
      const kv = view(cur.keys);
      const vv = view(cur.values);
      kv.copy_(k);
      vv.copy_(v);
      kv.dispose();
      vv.dispose();
      cur.length += t;
    }
    const s = this.layers[layer]!;
    return { keys: s.keys.narrow(2, 0, s.length), values: s.values.narrow(2, 0, s.length) };
  }

  /** A new state with capacity `cap` holding the old state's positions. */
  private grow(old: LayerState | null, k: Tensor, v: Tensor, cap: number): LayerState {
    const [b, h, , d] = k.shape;
    const alloc = (like: Tensor) => keep(empty([b, h, cap, d], { dtype: like.dtype, device: like.device }));
    const keys = alloc(k);
    const values = alloc(v);
    if (old && old.length > 0) {
      const kk = keys.narrow(2, 0, old.length);
      const vv = values.narrow(2, 0, old.length);
      const ok = old.keys.narrow(2, 0, old.length);
      const ov = old.values.narrow(2, 0, old.length);
      kk.copy_(ok);
      vv.copy_(ov);
      for (const x of [kk, vv, ok, ov]) x.dispose();
    }
    return { keys, values, length: old?.length ?? 0 };
  }

  private replace(layer: number, st: LayerState): void {
    const old = this.layers[layer];
    this.layers[layer] = st;
    if (old && old !== st) {
      if (old.keys !== st.keys) old.keys.dispose();
      if (old.values !== st.values) old.values.dispose();
    }
  }

  /** Builds a cache from per-layer tensors (each kept by the new cache). */
  private static from(numLayers: number, reserve: number, make: (st: LayerState) => { keys: Tensor; values: Tensor }, src: (LayerState | null)[]): KVCache {
    const out = new KVCache(numLayers, { reserve });
    src.forEach((st, i) => {
      if (!st) return;
      const { keys, values } = make(st);
      const made: LayerState = { keys: keep(keys), values: keep(values), length: st.length };
      if (reserve > 0) {
        // Room for `reserve` more positions, so decoding does not regrow right away.
        out.layers[i] = out.grow(made, keys, values, st.length + reserve);
        keys.dispose();
        values.dispose();
      } else {
        out.layers[i] = made;
      }
    });
    return out;
  }

  /**
   * A new cache whose batch rows are this cache's rows each repeated n times
   * (row i becomes rows i*n .. i*n+n-1, as repeatInterleave), e.g. to share a
   * prompt's cache among G sampled completions. This cache is unchanged.
   */
  repeatBatch(n: number): KVCache {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`KVCache.repeatBatch: n must be a positive integer, got ${n}`);
    return KVCache.from(
      this.numLayers,
      this.reserve,
      (st) => {
        const k = st.keys.narrow(2, 0, st.length);
        const v = st.values.narrow(2, 0, st.length);
        try {
          return { keys: k.repeatInterleave(n, 0), values: v.repeatInterleave(n, 0) };
        } finally {
          k.dispose();
          v.dispose();
        }
      },
      this.layers,
    );
  }

  /** A new cache holding only the given batch rows, in that order. This cache is unchanged. */
  select(batchIndices: readonly number[] | Tensor): KVCache {
    const idx = batchIndices instanceof Tensor ? batchIndices : null;
    return KVCache.from(
      this.numLayers,
      this.reserve,
      (st) => {
        const ix = idx ?? tensor(batchIndices as number[], { dtype: "int64", device: st.keys.device });
        const k = st.keys.narrow(2, 0, st.length);
        const v = st.values.narrow(2, 0, st.length);
        try {
          return { keys: k.indexSelect(0, ix), values: v.indexSelect(0, ix) };
        } finally {
          k.dispose();
          v.dispose();
          if (ix !== idx) ix.dispose();
        }
      },
      this.layers,
    );
  }

  /** Frees every cached tensor; the cache is empty afterwards. */
  dispose(): void {
    for (let i = 0; i < this.layers.length; i++) {
      const st = this.layers[i];
      if (st) {
        st.keys.dispose();
        st.values.dispose();
      }
      this.layers[i] = null;
    }
  }
}
