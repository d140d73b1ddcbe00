// What the libtorch in use can do, decided once, here. libtorch 1.13
// (Debian bookworm) lacks fused scaled-dot-product attention (2.0+) and
// aten::rms_norm (2.4+); callers branch on these flags, never on versions.
import { native } from "./native.js";
import { hasOp, opIdOf } from "./tensor.js";

const version = native.version();

function schemaHas(op: string, arg: string): boolean {
  return hasOp(op) && native.opSchema(opIdOf(op)).includes(` ${arg}`);
}

export const features = {
  /** libtorch version string, e.g. "1.13.0". */
  torchVersion: version.torch,
  major: version.major,
  minor: version.minor,
  /** aten::scaled_dot_product_attention (libtorch >= 2.0). */
  fusedAttention: hasOp("aten::scaled_dot_product_attention"),
  /** The fused attention takes an explicit `scale` (libtorch >= 2.1). */
  fusedAttentionScale: schemaHas("aten::scaled_dot_product_attention", "scale"),
  /**
   * The addon's fused CPU attention (native/src/attention.cpp) stands in where
   * libtorch has none; VLM_FUSED_CPU_ATTENTION=0 turns it off (the composite
   * path then runs, e.g. to compare the two).
   */
  fusedCpuAttention: process.env.VLM_FUSED_CPU_ATTENTION !== "0",
  /** aten::rms_norm (libtorch >= 2.4). */
  nativeRmsNorm: hasOp("aten::rms_norm"),
  /** c10d process groups over Gloo were compiled in. */
  gloo: version.gloo,
  /** c10d process groups over NCCL were compiled in. */
  nccl: version.nccl,
  /** Built with the C++11 ABI (must match libtorch's). */
  cxx11Abi: version.cxx11Abi,
} as const;

/** libtorch's threading and BLAS report (at::get_parallel_info). */
export function parallelInfo(): string {
  return native.version().parallelInfo;
}

/** Intra-op threads libtorch uses. Default: available cores (VLM_NUM_THREADS overrides). */
export function getNumThreads(): number {
  return native.getNumThreads();
}
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}

/**
 * Threads of OpenBLAS's own pool, apart from the intra-op threads above
 * (Debian's libtorch uses OpenBLAS's pthreads build; its default is the core
 * count, VLM_BLAS_THREADS overrides). Both pools at the core count
 * oversubscribe the cores on small matmuls: a small model trains about 3x
 * faster with 2 intra-op threads and 1 BLAS thread on 2 cores (BENCHMARKS.md,
 * "What makes the demo model see"), while large matmuls want the BLAS pool.
 * Returns false when the BLAS in use is not OpenBLAS (nothing changed).
 */
export function setBlasThreads(n: number): boolean {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`setBlasThreads: n must be a positive integer, got ${n}`);
  return native.setBlasThreads(n);
}
/** OpenBLAS's thread count; null when the BLAS in use is not OpenBLAS. */
export function getBlasThreads(): number | null {
  return native.getBlasThreads();
}
