// Which BLAS libtorch ended up with: Debian's default reference BLAS is
// ~30x slower than OpenBLAS, a silent performance trap worth reporting.
import fs from "node:fs";

export interface BlasReport {
  /** Path of the BLAS library mapped into this process, if found. */
  library: string | null;
  /** True when it is the slow reference implementation. */
  reference: boolean;
}

/** Reads /proc/self/maps after a matmul has loaded the BLAS (Linux only). */
export function detectBlas(): BlasReport {
  let maps = "";
  try {
    maps = fs.readFileSync("/proc/self/maps", "utf8");
  } catch {
    return { library: null, reference: false };
  }
  const libs = new Set(maps.split("\n").map((l) => l.trim().split(/\s+/).slice(5).join(" ")).filter((p) => /blas|mkl/i.test(p)));
  const resolved = [...libs].map((p) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return p;
    }
  });
  const fast = resolved.find((p) => /openblas|mkl|blis/i.test(p));
  if (fast) return { library: fast, reference: false };
  const ref = resolved.find((p) => /libblas/i.test(p));
  return { library: ref ?? null, reference: !!ref };
}
