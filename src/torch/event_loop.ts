// Why long tensor loops must give the event loop a turn now and then.
//
// Every tensor handle is a Node-API External with a finalizer. dispose()
// frees the tensor's storage at once, but the handle's own small record
// (its TensorHandle and Node-API's reference bookkeeping) is freed by that
// finalizer, and Node 20 does not run Node-API finalizers inside garbage
// collection: it queues them and drains the queue from a setImmediate
// callback, i.e. only when the event loop reaches its check phase. A loop
// that only awaits already-settled promises (microtasks) never gets there,
// so the queue grows by about 230 bytes per handle ever created: 137 MB per
// 600,000 handles measured here, and a GRPO step on the tiny model makes
// thousands. Signal handlers (SIGINT/SIGTERM) are dispatched from the event
// loop too, so such a loop cannot be interrupted either.
//
// yieldToEventLoop() lets one full turn pass (timers, I/O, signal handlers,
// the finalizer drain), and gives free heap pages back to the system when
// resident memory has grown (trimHeapNowAndThen, memory.ts). Call it once per training
// step, or every few thousand handles in any other long loop.
import { trimHeapNowAndThen } from "./memory.js";

/** Resolves after one turn of the event loop (its check phase), never from the microtask queue; trims the heap when resident memory grew. */
export function yieldToEventLoop(): Promise<void> {
  trimHeapNowAndThen();
  return new Promise((resolve) => setImmediate(resolve));
}
