// Neural-network functions (torch.nn.functional), composite where the
// libtorch in use lacks a fused kernel (see features.ts).
import { type DType, dtypeCode } from "./dtype.js";
import { features } from "./features.js";
import { native } from "./native.js";
import { callT, Tensor } from "./tensor.js";
import { tidy } from "./scope.js";

export type Reduction = "none" | "mean" | "sum";
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

function reductionCode(r: Reduction): number {
  const c = REDUCTION[r];
  if (c === undefined) throw new Error(`reduction must be 'none', 'mean' or 'sum', got '${r}'`);
  return c;
}

/** y = x W^T + b, with W of shape (out, in). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return callT("aten::linear", x, weight, bias ?? null);
}

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}
/** 2-d convolution over (B, C, H, W) with weight (out, in/groups, kH, kW). */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const pair = (v: number | [number, number] | undefined, d: number) => (v === undefined ? [d, d] : typeof v === "number" ? [v, v] : v);
  return callT("aten::conv2d", x, weight, bias ?? null, pair(opts.stride, 1), pair(opts.padding, 0), pair(opts.dilation, 1), opts.groups ?? 1);
}

/**
 * Rows of `weight` picked by integer `ids`; the row `paddingIdx` (if given)
 * gets no gradient. A negative paddingIdx counts from the end, as in
 * torch.nn.functional.embedding (aten itself reads -1 as "none").
 */
export function embedding(ids: Tensor, weight: Tensor, paddingIdx: number | null = null): Tensor {
  let pad = -1;
  if (paddingIdx !== null) {
    const n = weight.size(0);
    if (!Number.isInteger(paddingIdx) || paddingIdx < -n || paddingIdx >= n) {
      throw new RangeError(`embedding: paddingIdx ${paddingIdx} is out of range for ${n} embeddings`);
    }
    pad = paddingIdx < 0 ? paddingIdx + n : paddingIdx;
  }
  return callT("aten::embedding", weight, ids, pad, false, false);
}

export function layerNorm(x: Tensor, normalizedShape: readonly number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return callT("aten::layer_norm", x, normalizedShape, weight ?? null, bias ?? null, eps, true);
}

/**
 * RMS normalization over the last dim: x / sqrt(mean(x^2) + eps) * weight.
 * Computed in x's dtype (callers that want float32 statistics, as HF's
 * LlamaRMSNorm does, cast first). Fused when libtorch has aten::rms_norm.
 */
export function rmsNorm(x: Tensor, weight?: Tensor | null, eps = 1e-6): Tensor {
  if (features.nativeRmsNorm) return callT("aten::rms_norm", x, [x.size(-1)], weight ?? null, eps);
  return rmsNormComposite(x, weight, eps);
}

/** rmsNorm from elementary ops, as used without aten::rms_norm (exported so tests can compare the two). */
export function rmsNormComposite(x: Tensor, weight?: Tensor | null, eps = 1e-6): Tensor {
  return tidy(() => {
    const inv = x.pow(2).mean(-1, true).add(eps).rsqrt();
    const y = x.mul(inv);
    return weight ? y.mul(weight) : y;
  });
}

export function softmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return callT("aten::softmax.int", x, dim, dtype ? dtypeCode(dtype) : null);
}
export function logSoftmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return callT("aten::log_softmax.int", x, dim, dtype ? dtypeCode(dtype) : null);
}
export function silu(x: Tensor): Tensor {
  return callT("aten::silu", x);
}
/** GELU, exact (erf) or with the tanh approximation ("gelu_pytorch_tanh" in HF configs). */
export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor {
  return callT("aten::gelu", x, approximate);
}
export function relu(x: Tensor): Tensor {
  return callT("aten::relu", x);
}
export function sigmoid(x: Tensor): Tensor {
  return callT("aten::sigmoid", x);
}
export function tanh(x: Tensor): Tensor {
  return callT("aten::tanh", x);
}
/** Zeroes elements with probability p and scales the rest by 1/(1-p) when training. */
export function dropout(x: Tensor, p: number, training = true): Tensor {
  if (p < 0 || p > 1) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  if (!training || p === 0) return callT("aten::alias", x);
  return callT("aten::dropout", x, p, true);
}

export interface AttentionOptions {
  /** Boolean mask (true = attend) or additive float mask, broadcastable to (B, H, L, S). */
  attnMask?: Tensor | null;
  dropoutP?: number;
  /** Causal masking, aligned top-left as in PyTorch (query i sees keys 0..i). */
  isCausal?: boolean;
  /** Score scale; default 1/sqrt(head dim). */
  scale?: number;
}

/**
 * Query x key positions from which attention without a fused libtorch kernel
 * runs the addon's CPU kernel (attention.cpp) instead of the composite path:
 * a vision tower's whole-image attention (the demo model: 400 x 400), not a
 * decoding step's one query or a short prompt.
 */
export const FUSED_CPU_ATTENTION_MIN_SCORES = 4096;

/**
 * softmax(q k^T * scale + mask) v over (B, H, L, E) queries and (B, H, S, E)
 * keys/values. Fused on libtorch >= 2.0; on 1.13 the addon's fused CPU kernel
 * for long unmasked float attention (fusedCpuAttention), else the composite
 * path: the same result to rounding.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const { dropoutP = 0, isCausal = false } = opts;
  if (opts.attnMask && isCausal) throw new Error("scaledDotProductAttention: pass either attnMask or isCausal, not both");
  const headDim = q.size(-1);
  const scale = opts.scale ?? 1 / Math.sqrt(headDim);
  return tidy(() => {
    // An additive mask takes the query's dtype, so that a float32 mask does
    // not promote bfloat16 attention to float32 (fused kernels require it).
    let attnMask = opts.attnMask ?? null;
    if (attnMask && attnMask.dtype !== "bool" && attnMask.dtype !== q.dtype) attnMask = attnMask.to(q.dtype);
    if (features.fusedAttention && (features.fusedAttentionScale || opts.scale === undefined)) {
      const args = [q, k, v, attnMask, dropoutP, isCausal] as const;
      return features.fusedAttentionScale ? callT("aten::scaled_dot_product_attention", ...args, scale) : callT("aten::scaled_dot_product_attention", ...args);
    }
    if (features.fusedCpuAttention && !attnMask && !isCausal && dropoutP === 0 && q.size(-2) * k.size(-2) >= FUSED_CPU_ATTENTION_MIN_SCORES && fusedCpuAttentionApplies(q, k, v)) {
      return fusedCpuAttention(q, k, v, scale);
    }
    return sdpaComposite(q, k, v, attnMask, dropoutP, isCausal, scale);
  });
}

/** The kernel's case: CPU float32/float64, 4-D, one batch and head count (no broadcasting, which the composite path does). */
function fusedCpuAttentionApplies(q: Tensor, k: Tensor, v: Tensor): boolean {
  const floats = q.dtype === "float32" || q.dtype === "float64";
  const sameLeading = [k, v].every((t) => t.ndim === 4 && t.size(0) === q.size(0) && t.size(1) === q.size(1) && t.dtype === q.dtype && t.device === "cpu");
  return floats && q.ndim === 4 && q.device === "cpu" && sameLeading;
}

/**
 * softmax(q k^T * scale) v over (B, H, L, E) queries and (B, H, S, E) keys and
 * values on CPU in float32 or float64, fused per (batch, head) with a backward
 * that recomputes the scores (native/src/attention.cpp); no mask, no dropout.
 * Exported so that tests compare it with the composite path.
 */
export function fusedCpuAttention(q: Tensor, k: Tensor, v: Tensor, scale = 1 / Math.sqrt(q.size(-1))): Tensor {
  return new Tensor(native.fusedCpuAttention(q._h, k._h, v._h, scale));
}

/**
 * scaledDotProductAttention from elementary ops (matmul, masked fill,
 * softmax in q's dtype), the path of libtorch < 2.0; exported so tests can
 * compare it with the fused kernel. Arguments as resolved by the caller.
 */
export function scaledDotProductAttentionComposite(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const { dropoutP = 0, isCausal = false } = opts;
  if (opts.attnMask && isCausal) throw new Error("scaledDotProductAttentionComposite: pass either attnMask or isCausal, not both");
  const scale = opts.scale ?? 1 / Math.sqrt(q.size(-1));
  return tidy(() => {
    let attnMask = opts.attnMask ?? null;
    if (attnMask && attnMask.dtype !== "bool" && attnMask.dtype !== q.dtype) attnMask = attnMask.to(q.dtype);
    return sdpaComposite(q, k, v, attnMask, dropoutP, isCausal, scale);
  });
}

function sdpaComposite(q: Tensor, k: Tensor, v: Tensor, attnMask: Tensor | null, dropoutP: number, isCausal: boolean, scale: number): Tensor {
  return tidy(() => {
    let scores = q.matmul(k.transpose(-2, -1)).mul(scale); // (B, H, L, S)
    const L = q.size(-2);
    const S = k.size(-2);
    if (isCausal) {
      const allowed = callT("aten::ones", [L, S], dtypeCode("bool"), null, q.device, null).tril();
      scores = scores.maskedFill(allowed.logicalNot(), -Infinity);
    } else if (attnMask) {
      scores = attnMask.dtype === "bool" ? scores.maskedFill(attnMask.logicalNot(), -Infinity) : scores.add(attnMask);
    }
    let probs = softmax(scores, -1);
    if (dropoutP > 0) probs = dropout(probs, dropoutP, true);
    return probs.matmul(v);
  });
}

export interface CrossEntropyOptions {
  /** Targets equal to this are skipped (default -100, as in PyTorch). */
  ignoreIndex?: number;
  reduction?: Reduction;
  labelSmoothing?: number;
  weight?: Tensor | null;
}

/** Cross-entropy of logits (N, C) or (N, C, ...) against int64 class targets. */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  return callT(
    "aten::cross_entropy_loss",
    logits,
    target,
    opts.weight ?? null,
    reductionCode(opts.reduction ?? "mean"),
    opts.ignoreIndex ?? -100,
    opts.labelSmoothing ?? 0,
  );
}

export function nllLoss(logProbs: Tensor, target: Tensor, opts: { ignoreIndex?: number; reduction?: Reduction } = {}): Tensor {
  return callT("aten::nll_loss_nd", logProbs, target, null, reductionCode(opts.reduction ?? "mean"), opts.ignoreIndex ?? -100);
}

export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = "mean"): Tensor {
  return callT("aten::mse_loss", input, target, reductionCode(reduction));
}

/**
 * Pads the last dims: pad = [left, right, top, bottom, ...] as in
 * torch.nn.functional.pad. Modes: constant (with value), reflect, replicate.
 */
export function pad(x: Tensor, padding: readonly number[], mode: "constant" | "reflect" | "replicate" = "constant", value = 0): Tensor {
  if (padding.length % 2 !== 0) throw new Error(`pad: padding must have an even length, got ${padding.length}`);
  if (mode === "constant") return callT("aten::constant_pad_nd", x, padding, { float: value });
  const n = padding.length / 2;
  const op = `aten::${mode === "reflect" ? "reflection" : "replication"}_pad${n}d`;
  return callT(op, x, padding);
}

/** One-hot int64 encoding with `numClasses` classes. */
export function oneHot(ids: Tensor, numClasses = -1): Tensor {
  return callT("aten::one_hot", ids, numClasses);
}
