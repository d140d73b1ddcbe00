// Memory accounting for tests and long runs.
import { native } from "./native.js";
import { Tensor } from "./tensor.js";

/** Number of tensor handles that are live (made and not released). */
export function liveTensors(): number {
  return native.liveTensors();
}

/**
 * The C allocator's settings the addon made at load (allocator.cpp): on
 * glibc a fixed 32 MiB mmap threshold, so a training step's temporaries come
 * from the heap instead of fresh page-faulted mappings (null when the user
 * set MALLOC_MMAP_THRESHOLD_, or without glibc).
 */
export function allocatorInfo(): { glibc: boolean; mmapThreshold: number | null } {
  return native.allocatorInfo();
}

/** Gives free heap memory back to the system (glibc malloc_trim(0)); false when nothing was released or without glibc. */
export function mallocTrim(): boolean {
  return native.mallocTrim();
}

/** How often trimHeapNowAndThen trims, at most. */
export const HEAP_TRIM_INTERVAL_MS = 5000;
let lastTrim = performance.now();

/**
 * mallocTrim, at most once per HEAP_TRIM_INTERVAL_MS: called once per step
 * by long loops (through yieldToEventLoop). Free heap pages pinned by
 * long-lived blocks go back to the system: 2,000 distinct images through a
 * 16 MiB image cache grew RSS by 60 MiB without it, 19 MiB with it
 * (test/policy/image_cache.test.ts). Returns whether it trimmed.
 */
export function trimHeapNowAndThen(now = performance.now()): boolean {
  if (now - lastTrim < HEAP_TRIM_INTERVAL_MS) return false;
  lastTrim = now;
  mallocTrim();
  return true;
}

/**
 * A contiguous copy of `t` kept outside the C heap (CPU: an anonymous mapping
 * of its own, returned to the system when the copy is freed; other devices:
 * a plain clone). For tensors kept for long, such as cached images, so that
 * they do not pin the heap pages of freed temporaries (allocator.cpp).
 */
export function cloneOutsideHeap(t: Tensor): Tensor {
  return new Tensor(native.cloneOutsideHeap(t._h));
}
