// Memory accounting for tests and long runs.
import { native } from "./native.js";

/** Number of tensor handles that are live (made and not released). */
export function liveTensors(): number {
  return native.liveTensors();
}

/**
 * The C allocator's settings the addon made at load (allocator.cpp): on
 * glibc a fixed 128 KiB mmap threshold, so large tensors go back to the
 * system when freed instead of fragmenting the heap (null when the user set
 * MALLOC_MMAP_THRESHOLD_, or without glibc).
 */
export function allocatorInfo(): { glibc: boolean; mmapThreshold: number | null } {
  return native.allocatorInfo();
}

/** Gives free heap memory back to the system (glibc malloc_trim(0)); false when nothing was released or without glibc. */
export function mallocTrim(): boolean {
  return native.mallocTrim();
}
