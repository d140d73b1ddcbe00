// The server on a tiny random model: decisions equal `vlm-grpo predict`'s for
// the same images and threshold; batched answers equal single ones; every
// limit answers a 4xx JSON error naming the problem and the process stays up;
// /readyz, /metrics; the OpenAI route with the official client; the
// threshold sources; SIGTERM drains an in-flight request and exits.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import sharp from "sharp";
import { runConfigSchema } from "../../src/config/run_config.js";
import { validate } from "../../src/config/schema.js";
import { initModel } from "../../src/models/init_model.js";
import type { Classification } from "../../src/policy/classify.js";
import { buildServeApp } from "../../src/serve/app.js";
import type { Engine } from "../../src/serve/engine.js";
import { limitsFromConfig, type RunningServer, type ServeConfig, startServer } from "../../src/serve/server.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const TOKENS = 6;
let root = "";
let model = "";
let images: string[] = [];
let server: RunningServer;
let engine: Engine;

const serveConfig = (over: Partial<ServeConfig> = {}): ServeConfig => ({ ...validate(runConfigSchema, {}, { file: "test" }).serve, port: 0, max_new_tokens: TOKENS, ...over });

async function noisePng(file: string, size: number, seed: number) {
  const px = Buffer.alloc(size * size * 3);
  let s = seed;
  for (let i = 0; i < px.length; i++) px[i] = (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
  await sharp(px, { raw: { width: size, height: size, channels: 3 } }).png().toFile(file);
}

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-serve-"));
  model = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "model"), seed: 7 })).dir;
  images = [];
  for (let i = 0; i < 4; i++) {
    const f = path.join(root, `img${i}.png`);
    await noisePng(f, 32, i + 1);
    images.push(f);
  }
  server = await startServer(serveConfig({ max_batch: 8, batch_wait_ms: 30 }), { modelDir: model, threshold: { threshold: 0.5 } });
  engine = await server.loaded;
});
after(async () => {
  await server?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

async function moderateFiles(url: string, files: string[]) {
  const form = new FormData();
  for (const f of files) form.append("file", new Blob([fs.readFileSync(f)]), path.basename(f));
  const r = await fetch(`${url}/v1/moderate`, { method: "POST", body: form });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: r.status, body: (await r.json()) as any };
}

test("/v1/moderate decides as predict does for the same images and threshold (multipart and JSON alike)", async () => {
  const r = await moderateFiles(server.url, images);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const p = spawnSync(process.execPath, [MAIN, "predict", "--model", model, "--threshold", "0.5", "--max-new-tokens", String(TOKENS), ...images], { encoding: "utf8", timeout: 120_000 });
  assert.equal(p.status, 0, p.stderr);
  const rows = p.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(r.body.results.length, rows.length);
  r.body.results.forEach((x: Record<string, unknown>, i: number) => {
    assert.equal(x.id, path.basename(images[i]));
    assert.deepEqual([x.flagged, x.categories, x.threshold, x.answer], [rows[i].flagged, rows[i].categories, rows[i].threshold, rows[i].answer]);
    assert.ok(Math.abs((x.score as number) - rows[i].score) < 1e-5, `score ${x.score} vs predict ${rows[i].score}`);
    assert.equal(x.threshold_source, "threshold 0.5");
    assert.equal(x.model, "model");
    assert.ok(typeof x.latency_ms === "number");
  });
  const j = await fetch(`${server.url}/v1/moderate`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ images: [{ id: "a", data: fs.readFileSync(images[0]).toString("base64") }, { data: `data:image/png;base64,${fs.readFileSync(images[1]).toString("base64")}` }] }),
  });
  const jb = (await j.json()) as { results: { id: string; score: number }[] };
  assert.equal(j.status, 200);
  assert.deepEqual(jb.results.map((x: { id: string; score: number }) => [x.id, x.score]), [["a", r.body.results[0].score], ["image1", r.body.results[1].score]]);
});

test("batched answers equal single-image answers; batches of several images really ran", async () => {
  const fresh: string[] = [];
  for (let i = 0; i < 5; i++) {
    const f = path.join(root, `b${i}.png`);
    await noisePng(f, 32, 100 + i);
    fresh.push(f);
  }
  const concurrent = await Promise.all(fresh.map((f) => moderateFiles(server.url, [f])));
  const single: Classification[] = [];
  for (const f of fresh) single.push((await engine.classify([{ id: "x", bytes: fs.readFileSync(f) }]))[0]);
  concurrent.forEach((r, i) => {
    assert.equal(r.status, 200);
    const x = r.body.results[0];
    assert.equal(x.answer, single[i].answer);
    assert.ok(Math.abs(x.score - single[i].score) < 1e-5, `batched ${x.score} vs single ${single[i].score}`);
    for (const c of Object.keys(single[i].categoryScores)) assert.ok(Math.abs(x.category_scores[c] - single[i].categoryScores[c]) < 1e-5);
  });
  const m = await (await fetch(`${server.url}/metrics`)).text();
  const le1 = Number(/vlm_serve_batch_size_bucket\{le="1"\} (\d+)/.exec(m)![1]);
  const count = Number(/vlm_serve_batch_size_count (\d+)/.exec(m)![1]);
  assert.ok(count > le1, `some batch held more than one image:\n${m}`);
  // Identical bytes again: answered from the cache.
  const before = Number(/vlm_serve_cache_hits_total (\d+)/.exec(m)?.[1] ?? 0);
  await moderateFiles(server.url, [fresh[0]]);
  const m2 = await (await fetch(`${server.url}/metrics`)).text();
  assert.equal(Number(/vlm_serve_cache_hits_total (\d+)/.exec(m2)![1]), before + 1);
});

test("/healthz, /readyz and /metrics in Prometheus text format", async () => {
  assert.deepEqual(await (await fetch(`${server.url}/healthz`)).json(), { status: "ok" });
  const ready = (await (await fetch(`${server.url}/readyz`)).json()) as { status: string; threshold_source: string };
  assert.deepEqual([ready.status, ready.threshold_source], ["ready", "threshold 0.5"]);
  const notYet = buildServeApp(limitsFromConfig(serveConfig()));
  const r = await notYet.app.inject({ method: "GET", url: "/readyz" });
  assert.equal(r.statusCode, 503);
  const m = await fetch(`${server.url}/metrics`);
  assert.match(m.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await m.text();
  for (const re of [/# TYPE vlm_serve_requests_total counter/, /vlm_serve_requests_total\{route="\/v1\/moderate",status="200"\} \d+/, /vlm_serve_request_duration_seconds_bucket\{route="\/v1\/moderate",le="\+Inf"\} \d+/, /# TYPE vlm_serve_queue_depth gauge\nvlm_serve_queue_depth 0/, /vlm_serve_images_total\{outcome="(flagged|passed)"\} \d+/]) {
    assert.match(text, re);
  }
  // Flags per category: every flagged image counted under its categories or "none".
  const flagged = Number(/vlm_serve_images_total\{outcome="flagged"\} (\d+)/.exec(text)?.[1] ?? 0);
  const perCat = [...text.matchAll(/vlm_serve_flags_total\{category="[^"]+"\} (\d+)/g)].reduce((a, x) => a + Number(x[1]), 0);
  assert.ok(perCat >= flagged);
});

test("limits: body size, pixels, garbage, truncated, decode time, image count, queue; each a 4xx JSON error naming the problem; the server stays up", async () => {
  const big = path.join(root, "big.png");
  await noisePng(big, 400, 9);
  const bigBytes = fs.readFileSync(big);
  const make = (over: Partial<ServeConfig>) => {
    const s = buildServeApp(limitsFromConfig(serveConfig(over)));
    s.setEngine(engine);
    return s.app;
  };
  const json = (app: ReturnType<typeof make>, imgs: (Uint8Array | string)[]) =>
    app.inject({ method: "POST", url: "/v1/moderate", payload: { images: imgs.map((b) => ({ data: typeof b === "string" ? b : Buffer.from(b).toString("base64") })) } });
  const expect = async (res: Awaited<ReturnType<typeof json>>, status: number, code: string, message: RegExp) => {
    assert.equal(res.statusCode, status, res.body);
    const b = JSON.parse(res.body);
    assert.equal(b.error.code, code);
    assert.match(b.error.message, message);
  };
  const app = make({ body_limit_mb: 0.1, max_pixels: 300 * 300, max_images: 2, queue_max: 2 });
  await expect(await json(app, [bigBytes]), 413, "body_too_large", /limit is 104858 bytes/);
  const form = new FormData();
  form.append("file", new Blob([bigBytes]), "big.png");
  const req = new Request("http://x/", { method: "POST", body: form });
  const mp = await app.inject({ method: "POST", url: "/v1/moderate", headers: { "content-type": req.headers.get("content-type")! }, payload: Buffer.from(await req.arrayBuffer()) });
  await expect(mp, 413, "body_too_large", /body_limit_mb/);
  // 400x400 as a small flat PNG: under the body limit, over the pixel limit (read from the header).
  const flat = await sharp({ create: { width: 400, height: 400, channels: 3, background: "#888" } }).png().toBuffer();
  await expect(await json(app, [flat]), 413, "too_many_pixels", /400x400 = 160000 pixels exceeds the limit of 90000/);
  await expect(await json(app, [new Uint8Array(Buffer.from("this is not an image at all"))]), 400, "not_an_image", /image0: not a readable image/);
  await expect(await json(app, ["%%%not base64"]), 400, "bad_base64", /not valid base64/);
  const good = fs.readFileSync(images[0]);
  const small = await sharp(bigBytes).resize(64, 64).png({ compressionLevel: 0 }).toBuffer();
  await expect(await json(app, [small.subarray(0, Math.floor(small.length / 2))]), 422, "corrupt_image", /truncated or corrupt/);
  await expect(await json(app, [good, good, good]), 413, "too_many_images", /limit is 2/);
  await expect(await app.inject({ method: "POST", url: "/v1/moderate", payload: { nope: 1 } }), 400, "bad_request", /expected multipart files, or JSON/);
  // Decode time: a 1-megapixel noisy PNG cannot be decoded in 1 ms.
  const slow = path.join(root, "slow.png");
  await noisePng(slow, 1000, 3);
  await expect(await json(make({ decode_timeout_ms: 1, body_limit_mb: 20 }), [fs.readFileSync(slow)]), 422, "decode_timeout", /longer than 1 ms/);
  // Queue: 2 images may wait; a request with 3 is refused at once with Retry-After.
  const q = await json(make({ queue_max: 2, max_images: 8 }), [good, images[1], images[2]].map((x) => (typeof x === "string" ? fs.readFileSync(x) : x)));
  await expect(q, 429, "queue_full", /queue is full/);
  assert.equal(q.headers["retry-after"], "1");
  // The real server is still up and answering after all that.
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  assert.equal((await moderateFiles(server.url, [images[0]])).status, 200);
});

test("threshold sources: --threshold-from an eval's metrics.json, and the answer when the card saves none", async () => {
  const { resolveRule } = await import("../../src/serve/threshold_source.js");
  const metrics = path.join(root, "metrics.json");
  fs.writeFileSync(metrics, JSON.stringify({ grpo: { threshold_for_target_recall: { target_recall: 0.95, threshold: 0.31 }, thresholds: null } }));
  const rule = resolveRule(null, ["nudity", "weapons"], { thresholdFrom: metrics, targetRecall: 0.95 }, "card");
  assert.equal(rule.kind, "threshold");
  assert.equal(rule.kind === "threshold" && rule.overall, 0.31);
  assert.match(rule.kind === "threshold" ? rule.source : "", /metrics\.json \[grpo\]: threshold_for_target_recall 0\.95/);
  assert.throws(() => resolveRule(null, ["nudity", "weapons"], { thresholdFrom: metrics, targetRecall: 0.9 }, "card"), /no thresholds for target recall 0\.9/);
  assert.throws(() => resolveRule(null, ["nudity", "weapons"], { thresholdFrom: metrics, evalModel: "sft" }, "card"), /no model 'sft' \(it has grpo\)/);
  assert.deepEqual(resolveRule(null, ["nudity", "weapons"], {}, "card"), { kind: "answer" });
});

test("OpenAI-compatible chat completions with the official openai client, plain and streaming", async () => {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
  const url = `data:image/png;base64,${fs.readFileSync(images[0]).toString("base64")}`;
  const messages = [{ role: "user" as const, content: [{ type: "image_url" as const, image_url: { url } }, { type: "text" as const, text: "Is this image offensive?" }] }];
  const plain = await client.chat.completions.create({ model: "model", messages, max_tokens: 8, temperature: 0 });
  const text = plain.choices[0].message.content ?? "";
  const direct = await engine.chat({ messages: [{ role: "user", content: [{ type: "image" }, { type: "text", text: "Is this image offensive?" }] }], images: [fs.readFileSync(images[0])], maxTokens: 8, temperature: 0, topP: 1, seed: 0 });
  assert.equal(text, direct.text);
  assert.equal(plain.usage?.completion_tokens, direct.completionTokens);
  const stream = await client.chat.completions.create({ model: "model", messages, max_tokens: 8, temperature: 0, stream: true });
  let streamed = "";
  let finish: string | null = null;
  for await (const chunk of stream) {
    streamed += chunk.choices[0]?.delta?.content ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(streamed, text);
  assert.ok(finish === "stop" || finish === "length");
  await assert.rejects(client.chat.completions.create({ model: "model", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "http://example.com/x.png" } }] }] }), /only data: URIs/);
});

test("SIGTERM: an in-flight request finishes, then the process exits 0", async () => {
  const child = spawn(process.execPath, [MAIN, "serve", "--model", model, "--port", "0", "--serve.max_new_tokens", "24"], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  const ready = new Promise<string>((resolve, reject) => {
    child.stderr.on("data", (d) => {
      err += d;
      if (/serve: ready/.test(err)) resolve(/listening on (\S+)/.exec(err)![1]);
    });
    child.on("exit", () => reject(new Error(`exited early: ${err}`)));
  });
  const url = await ready;
  const inFlight = moderateFiles(url, [images[3]]);
  // SIGTERM once the request is being answered (the gauge counts it).
  for (let i = 0; i < 200; i++) {
    const m = await (await fetch(`${url}/metrics`)).text();
    if (/vlm_serve_in_flight_requests [1-9]/.test(m)) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  child.kill("SIGTERM");
  const r = await inFlight;
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(await exited, 0, err);
  assert.match(err, /SIGTERM: draining/);
});
