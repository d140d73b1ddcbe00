// Grad mode and autocast scopes; state is restored in `finally`.
import { type DType, dtypeCode, dtypeFromCode } from "./dtype.js";
import { native } from "./native.js";
import { type Tensor } from "./tensor.js";

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

export function setGradEnabled(on: boolean): void {
  native.setGradEnabled(on);
}

function withGradMode<T>(on: boolean, fn: () => T): T {
  const prev = native.isGradEnabled();
  native.setGradEnabled(on);
  try {
    const r = fn();
    if (typeof (r as { then?: unknown })?.then === "function") {
      throw new Error("noGrad/enableGrad: the body returned a Promise; grad mode is thread state and cannot span an await");
    }
    return r;
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs `fn` without recording autograd graphs (inference, optimizer steps). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Runs `fn` with gradient recording on, even inside noGrad. */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}

/** Backward from several outputs at once. */
export function backward(outputs: Tensor[], grads?: (Tensor | null)[], options: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
  native.backward(
    outputs.map((t) => t._h),
    grads ? grads.map((g) => (g ? g._h : null)) : null,
    options.retainGraph ?? false,
    options.createGraph ?? false,
  );
}

export type AutocastDevice = "cpu" | "cuda";

/**
 * Runs `fn` under autocast: matmuls, linear layers and convolutions run in
 * `dtype` (default bfloat16) while precision-sensitive ops stay in float32,
 * as torch.autocast does. Supported: bfloat16 on CPU; bfloat16/float16 on CUDA.
 */
export function autocast<T>(device: AutocastDevice, fn: () => T, dtype: DType = "bfloat16"): T {
  if (device === "cpu" && dtype !== "bfloat16") throw new Error(`autocast: CPU supports bfloat16 only, got ${dtype}`);
  if (device === "cuda" && dtype !== "bfloat16" && dtype !== "float16") throw new Error(`autocast: CUDA supports bfloat16 or float16, got ${dtype}`);
  const [prevOn, prevCode] = native.getAutocast(device);
  native.setAutocast(device, true, dtypeCode(dtype));
  try {
    const r = fn();
    if (typeof (r as { then?: unknown })?.then === "function") throw new Error("autocast: the body returned a Promise; autocast cannot span an await");
    return r;
  } finally {
    native.setAutocast(device, prevOn, prevCode);
  }
}

/** Whether autocast is on for a device type, and its dtype. */
export function autocastState(device: AutocastDevice): { enabled: boolean; dtype: DType } {
  const [enabled, code] = native.getAutocast(device);
  return { enabled, dtype: dtypeFromCode(code) };
}
