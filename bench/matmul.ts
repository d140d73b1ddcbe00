// The fp32 matmul peak the benchmarks report and divide by (MFU): the best of
// `reps` timed n x n x n products through our API, after one warm-up product.
import { noGrad, randn, tidy } from "../src/torch/index.js";

/** GFLOP/s (2 n^3 flops per product) of the fastest of `reps` n x n matmuls. */
export function matmulGflops(n: number, reps: number): number {
  return tidy(() => {
    const a = randn([n, n]);
    const b = randn([n, n]);
    noGrad(() => a.matmul(b).dispose());
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      a.matmul(b).dispose();
      times.push(performance.now() - t0);
    }
    return (2 * n ** 3) / (Math.min(...times) / 1000) / 1e9;
  });
}
