// Attention helpers shared by the models: grouped-query attention over
// scaledDotProductAttention, and the causal + padding mask of a decoder.
import { arange, F, features, type Tensor, tidy } from "../torch/index.js";

/**
 * (B, Hkv, S, D) -> (B, Hkv * nRep, S, D), each kv head repeated nRep times
 * in place (head h of the result reads kv head floor(h / nRep)), as HF's repeat_kv.
 */
export function repeatKv(x: Tensor, nRep: number): Tensor {
  if (nRep === 1) return x;
  return tidy(() => {
    const [b, h, s, d] = x.shape;
    return x.unsqueeze(2).expand(b, h, nRep, s, d).reshape(b, h * nRep, s, d);
  });
}

export interface AttendOptions {
  /** Boolean mask (true = attend) broadcastable to (B, H, T, S). */
  mask?: Tensor | null;
  /** Causal, top-left aligned (query i sees keys 0..i); only without a mask. */
  isCausal?: boolean;
  /** Score scale; default 1/sqrt(D). */
  scale?: number;
  /** Attention dropout probability (training only). Default 0. */
  dropoutP?: number;
}

/**
 * softmax(q k^T * scale + mask) v with q (B, H, T, D) and k, v (B, Hkv, S, D),
 * H a multiple of Hkv (grouped-query attention). A single query position
 * (decoding) is computed per kv head without copying the cache: the nRep
 * query heads that share a kv head become nRep query rows.
 */
export function attend(q: Tensor, k: Tensor, v: Tensor, opts: AttendOptions = {}): Tensor {
  const [b, h, t, d] = q.shape;
  const hkv = k.size(1);
  if (h % hkv !== 0) throw new Error(`attend: ${h} query heads is not a multiple of ${hkv} kv heads`);
  const nRep = h / hkv;
  const sdpa = { attnMask: opts.mask ?? null, isCausal: opts.mask ? false : (opts.isCausal ?? false), scale: opts.scale, dropoutP: opts.dropoutP ?? 0 };
  const run = q.dtype === "float32" || q.dtype === "float64" || features.fusedAttention ? F.scaledDotProductAttention : halfPrecisionAttention;
  return tidy(() => {
    if (nRep > 1 && t === 1 && !sdpa.isCausal) {
      // mask (B|1, 1, 1, S) broadcasts over (B, Hkv, nRep, S).
      const qg = q.reshape(b, hkv, nRep, d);
      return run(qg, k, v, sdpa).reshape(b, h, 1, d);
    }
    return run(q, repeatKv(k, nRep), repeatKv(v, nRep), sdpa);
  });
}

/**
 * Composite attention for bfloat16 / float16 without a fused kernel: the
 * softmax runs in float32 and is cast back, as HF's eager attention does
 * (a bfloat16 softmax over long rows loses too much precision).
 */
function halfPrecisionAttention(q: Tensor, k: Tensor, v: Tensor, o: F.AttentionOptions): Tensor {
  return tidy(() => {
    let scores = q.matmul(k.transpose(-2, -1)).mul(o.scale ?? 1 / Math.sqrt(q.size(-1)));
    const [lq, sk] = [q.size(-2), k.size(-2)];
    if (o.isCausal) scores = scores.maskedFill(arange(0, sk, 1, { device: q.device }).view(1, sk).gt(arange(0, lq, 1, { device: q.device }).view(lq, 1)), -Infinity);
    else if (o.attnMask) scores = o.attnMask.dtype === "bool" ? scores.maskedFill(o.attnMask.logicalNot(), -Infinity) : scores.add(o.attnMask);
    let probs = F.softmax(scores, -1, "float32").to(q.dtype);
    if (o.dropoutP && o.dropoutP > 0) probs = F.dropout(probs, o.dropoutP, true);
    return probs.matmul(v);
  });
}

/** A decoder's attention mask: either a boolean mask (B|1, 1, T, S) or "causal" / none. */
export interface DecoderMask {
  mask: Tensor | null;
  isCausal: boolean;
}

/**
 * The mask for T new queries at positions past..past+T-1 over S = past + T
 * keys: causal, and (with `attentionMask` [B, S] of 0/1, left padding allowed)
 * no attention to padded keys. Every query may also attend to itself, so a
 * padded query row is never fully masked (its output is ignored, but a fully
 * masked row would give NaN, and a NaN value at a padded key would reach real
 * rows through 0 * NaN in the probabilities-times-values product).
 */
export function decoderMask(attentionMask: Tensor | null | undefined, t: number, past: number): DecoderMask {
  const s = past + t;
  let hasPadding = false;
  if (attentionMask) {
    if (attentionMask.ndim !== 2 || attentionMask.size(1) !== s) {
      throw new Error(`attentionMask must be [batch, past + T] = [*, ${s}] (past ${past}, T ${t}), got [${attentionMask.shape.join(", ")}]`);
    }
    hasPadding = !tidy(() => Boolean(attentionMask.ne(0).all().item()));
  }
  if (!hasPadding) {
    if (t === 1) return { mask: null, isCausal: false };
    if (past === 0) return { mask: null, isCausal: true };
  }
  return {
    mask: tidy(() => {
      const dev = attentionMask?.device ?? "cpu";
      const qpos = arange(past, s, 1, { device: dev }).view(t, 1);
      const kpos = arange(0, s, 1, { device: dev }).view(1, s);
      let allowed = kpos.le(qpos); // (T, S)
      if (hasPadding) {
        const keyValid = attentionMask!.ne(0).view(attentionMask!.size(0), 1, 1, s);
        allowed = allowed.view(1, 1, t, s).logicalAnd(keyValid).logicalOr(kpos.eq(qpos).view(1, 1, t, s));
      } else {
        allowed = allowed.view(1, 1, t, s);
      }
      return allowed;
    }),
    isCausal: false,
  };
}
