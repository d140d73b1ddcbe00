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
 * from the heap instead of fresh page-faulted mappings, and a 256 MiB trim
 * threshold, so that freeing them does not hand their pages back to the
 * system each step (each null when the user set MALLOC_MMAP_THRESHOLD_ or
 * MALLOC_TRIM_THRESHOLD_, or without glibc).
 */
export function allocatorInfo(): { glibc: boolean; mmapThreshold: number | null; trimThreshold: number | null } {
  return native.allocatorInfo();
}

/** Gives free heap memory back to the system (glibc malloc_trim(0)); false when nothing was released or without glibc. */
export function mallocTrim(): boolean {
  return native.mallocTrim();
}

/** Resident memory may exceed its level after the last trim by this much (and never its level before it) before trimHeapNowAndThen trims again. */
export const HEAP_TRIM_GROWTH_BYTES = 16 * 2 ** 20;
let trimBar = -1;

/**
 * mallocTrim when resident memory is above a bar: at first the level of the
 * first call plus HEAP_TRIM_GROWTH_BYTES; after a trim, the higher of the
 * level the trim left plus HEAP_TRIM_GROWTH_BYTES and the level it found.
 * Called once per step by long loops (through yieldToEventLoop). Free heap
 * pages that long-lived blocks pin go back to the system, so fragmentation
 * cannot push memory above an earlier peak, while a training step's
 * temporaries, faulted in again after a trim, climb back to that peak
 * without setting off another trim (trimming each step would make them
 * page-fault every step, the cost allocator.cpp avoids). 2,000 distinct
 * images through a 16 MiB image cache grew RSS by up to 205 MiB on libtorch
 * 2.x with a trim every 5 s instead (test/policy/image_cache.test.ts).
 * Returns whether it trimmed.
 */
export function trimHeapNowAndThen(rss = process.memoryUsage.rss()): boolean {
  if (trimBar < 0) {
    trimBar = rss + HEAP_TRIM_GROWTH_BYTES;
    return false;
  }
  if (rss <= trimBar) return false;
  mallocTrim();
  trimBar = Math.max(process.memoryUsage.rss() + HEAP_TRIM_GROWTH_BYTES, rss);
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
