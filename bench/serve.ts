// `npm run bench:serve`: load test of `vlm-grpo serve` on loopback with
// autocannon. A tiny random Idefics3 model (init-model --preset tiny) is
// written to a temporary folder and served by a child process (so the load
// generator does not share the server's event loop); each cell is one
// autocannon run of --duration seconds posting JSON /v1/moderate requests
// with one image each, cycling over --images distinct 32x32 images, for 1, 8
// and 32 concurrent connections, with batching on (serve.max_batch 8,
// batch_wait_ms 5) and off (max_batch 1). The classification cache is off
// (cache_entries 0) so every request runs the model; a last row shows the
// cache on, every request hitting it.
//
// Flags: --duration S (10)  --images N (64)  --max-new-tokens N (24)  --json
import { spawn } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { initModel } from "../src/models/init_model.js";

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (opts: Record<string, unknown>, cb: (err: Error | null, r: AutocannonResult) => void) => unknown;
const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

const MAIN = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const duration = arg("duration", 10);
const nImages = arg("images", 64);
const maxNewTokens = arg("max-new-tokens", 24);

async function startServe(model: string, extra: string[]): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [MAIN, "serve", "--model", model, "--port", "0", "--serve.max_new_tokens", String(maxNewTokens), "--serve.queue_max", "1024", ...extra], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on("data", (d) => {
      err += d;
      if (/serve: ready/.test(err)) resolve(/listening on (\S+)/.exec(err)![1]);
    });
    child.on("exit", (c) => reject(new Error(`serve exited (${c}): ${err}`)));
  });
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        child.removeAllListeners("exit");
        child.on("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

function load(url: string, connections: number, bodies: string[]): Promise<AutocannonResult> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `${url}/v1/moderate`,
        connections,
        duration,
        method: "POST",
        headers: { "content-type": "application/json" },
        requests: bodies.map((body) => ({ method: "POST", body })),
        timeout: 60,
      },
      (e, r) => (e ? reject(e) : resolve(r)),
    );
  });
}

async function main() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-bench-serve-"));
  try {
    const model = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "model"), seed: 7 })).dir;
    const bodies: string[] = [];
    for (let i = 0; i < nImages; i++) {
      const px = Buffer.alloc(32 * 32 * 3);
      let s = i + 1;
      for (let k = 0; k < px.length; k++) px[k] = (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
      const png = await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
      bodies.push(JSON.stringify({ images: [{ id: `img${i}`, data: png.toString("base64") }] }));
    }
    const rows: Record<string, unknown>[] = [];
    const loadBefore = os.loadavg()[0];
    const cases: [string, string[], number[]][] = [
      ["batching on (max_batch 8)", ["--serve.max_batch", "8", "--serve.batch_wait_ms", "5", "--serve.cache_entries", "0"], [1, 8, 32]],
      ["batching off (max_batch 1)", ["--serve.max_batch", "1", "--serve.cache_entries", "0"], [1, 8, 32]],
      ["cache on, every request a hit", ["--serve.max_batch", "8", "--serve.cache_entries", "1024"], [8]],
    ];
    for (const [label, flags, conns] of cases) {
      const s = await startServe(model, flags);
      try {
        if (label.startsWith("cache")) for (const body of bodies) await fetch(`${s.url}/v1/moderate`, { method: "POST", headers: { "content-type": "application/json" }, body }); // every image cached
        else await load(s.url, 1, bodies.slice(0, 2)); // warm-up
        for (const c of conns) {
          const r = await load(s.url, c, bodies);
          const row = { mode: label, connections: c, req_per_s: r.requests.average, p50_ms: r.latency.p50, p99_ms: r.latency.p99, errors: r.errors + r.timeouts + r.non2xx, requests: r.requests.total };
          rows.push(row);
          console.error(JSON.stringify(row));
        }
      } finally {
        await s.stop();
      }
    }
    const header = `vlm-grpo serve, tiny idefics3, ${duration} s per cell, ${nImages} distinct 32x32 images, max_new_tokens ${maxNewTokens}; ${os.cpus().length} cores, load average ${loadBefore.toFixed(2)} before, ${os.loadavg()[0].toFixed(2)} after`;
    console.log(header);
    console.log("| mode | clients | req/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|");
    for (const r of rows) console.log(`| ${r.mode} | ${r.connections} | ${(r.req_per_s as number).toFixed(1)} | ${r.p50_ms} | ${r.p99_ms} | ${r.errors} |`);
    if (process.argv.includes("--json")) console.log(JSON.stringify({ header, rows }));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
