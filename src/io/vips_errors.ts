// libvips keeps one error buffer for the whole process, and sharp reads it
// when an operation fails. While several images decode at once (the data
// loader, `data check`, the server), a failure's message can therefore carry
// other images' errors ("vipspng: libpng read error\nVipsJpeg: premature end
// of JPEG image" for a cut JPEG) or none ("Unknown error"). Measured with 300
// concurrent decodes of cut JPEGs and PNGs: 15 different messages.
//
// So a sharp operation that fails is run once more with no other operation
// of this gate in flight, and its error then names this image's problem
// alone. Failures are rare, so the serial retry costs nothing in a clean run
// (a data set with many bad rows decodes them one at a time). The server
// does not use the gate (serve/image_check.ts says why).

let inFlight = 0;
let drainedWaiters: (() => void)[] = [];
let exclusive: Promise<void> | null = null;

async function shared<T>(op: () => Promise<T>): Promise<T> {
  while (exclusive) await exclusive;
  inFlight++;
  try {
    return await op();
  } finally {
    inFlight--;
    if (inFlight === 0) {
      const waiters = drainedWaiters;
      drainedWaiters = [];
      for (const w of waiters) w();
    }
  }
}

async function alone<T>(op: () => Promise<T>): Promise<T> {
  while (exclusive) await exclusive;
  let release!: () => void;
  exclusive = new Promise<void>((r) => (release = r));
  try {
    if (inFlight > 0) await new Promise<void>((r) => drainedWaiters.push(r));
    return await op();
  } finally {
    exclusive = null;
    release();
  }
}

/**
 * Runs a sharp operation; when it fails, runs it again alone (no other gated
 * operation in flight) and returns or throws what that run gives, so the
 * error message belongs to this operation.
 */
export async function runWithOwnErrors<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await shared(op);
  } catch {
    return await alone(op);
  }
}

/** A sharp error as one line: libvips' lines without repeats, joined by "; "; "libvips gave no reason" when it gave none. */
export function vipsReason(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const lines = [...new Set(text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && l !== "Unknown error"))];
  return lines.length > 0 ? lines.join("; ") : "libvips gave no reason";
}
