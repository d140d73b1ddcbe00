// The HTTP server (Fastify): the moderation route, health and readiness, the
// Prometheus metrics, the OpenAI-compatible chat route (openai_route.ts) and
// the review page (review_page.ts). The app starts before the model is loaded
// (/readyz answers 503 until setEngine); every error becomes a JSON body
// {error: {code, message}} with a 4xx/5xx status, never a crash.
import multipart from "@fastify/multipart";
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import { decide } from "../policy/decide.js";
import { Batcher, QueueFullError } from "./batcher.js";
import type { Engine } from "./engine.js";
import { bytesFromBase64, checkImageBytes, RequestError } from "./image_check.js";
import { ServeMetrics } from "./metrics.js";
import { registerOpenAiRoute } from "./openai_route.js";
import { REVIEW_PAGE_HTML } from "./review_page.js";

export interface ServeLimits {
  maxBatch: number;
  batchWaitMs: number;
  queueMax: number;
  bodyLimitBytes: number;
  maxPixels: number;
  decodeTimeoutMs: number;
  maxImages: number;
  cacheEntries: number;
  cacheTtlMs: number;
}

export interface ServeApp {
  app: FastifyInstance;
  metrics: ServeMetrics;
  /** Set once the model is loaded; /readyz then answers 200. */
  setEngine(engine: Engine): void;
  /** Resolves when no image is queued or classifying. */
  idle(): Promise<void>;
  /** Stops accepting requests (503) and waits for those in flight. */
  drain(): Promise<void>;
}

/** One moderation answer per image. */
export interface ModerationResult {
  id: string;
  flagged: boolean;
  categories: string[];
  score: number | null;
  threshold: number | null;
  threshold_source: string;
  answer: string;
  answer_kind: string;
  category_scores: Record<string, number>;
  model: string;
  latency_ms: number;
}

export function sendError(reply: FastifyReply, status: number, code: string, message: string, headers: Record<string, string> = {}) {
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  return reply.code(status).send({ error: { code, message } });
}

export function buildServeApp(limits: ServeLimits): ServeApp {
  const app = Fastify({ bodyLimit: limits.bodyLimitBytes, logger: false, return503OnClosing: true, forceCloseConnections: "idle" });
  let engine: Engine | null = null;
  let draining = false;
  let batcher: Batcher | null = null;
  const metrics = new ServeMetrics(() => batcher?.depth ?? 0, () => inFlight);

  app.register(multipart, { limits: { fileSize: limits.bodyLimitBytes, files: limits.maxImages, fields: 16, parts: limits.maxImages + 16 } });

  let inFlight = 0;
  // While draining, answers close their connection: a keep-alive socket that
  // was busy when close() began would otherwise hold the server open.
  app.addHook("onSend", async (_req, reply) => {
    if (draining) reply.header("connection", "close");
  });
  app.addHook("onRequest", async (req) => {
    if (req.url.startsWith("/v1/")) inFlight++;
  });
  app.addHook("onResponse", async (req, reply) => {
    if (req.url.startsWith("/v1/")) inFlight--;
    const route = req.routeOptions.url ?? "unmatched";
    metrics.requests.inc({ route, status: String(reply.statusCode) });
    metrics.latency.observe(reply.elapsedTime / 1000, { route });
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof RequestError) return sendError(reply, err.status, err.code, err.message, err.headers);
    if (err instanceof QueueFullError) {
      metrics.rejected.inc();
      return sendError(reply, 429, "queue_full", err.message, { "retry-after": "1" });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    const code = err.code === "FST_ERR_CTP_BODY_TOO_LARGE" || err.code === "FST_REQ_FILE_TOO_LARGE" ? "body_too_large" : status >= 500 ? "internal_error" : (err.code ?? "bad_request");
    const message = code === "body_too_large" ? `request body too large: the limit is ${limits.bodyLimitBytes} bytes (serve.body_limit_mb)` : err.message;
    return sendError(reply, status, code, message);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, "not_found", `no route ${req.method} ${req.url}`));

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    if (!engine) return sendError(reply, 503, "loading", "the model is still loading");
    return { status: "ready", model: engine.modelName, threshold_source: engine.thresholdSource, categories: engine.categories };
  });
  app.get("/metrics", async (_req, reply) => reply.type("text/plain; version=0.0.4; charset=utf-8").send(metrics.render()));
  app.get("/", async (_req, reply) => reply.type("text/html; charset=utf-8").send(REVIEW_PAGE_HTML));

  const ready = (): Engine => {
    if (!engine) throw new RequestError(503, "loading", "the model is still loading; retry when /readyz answers 200", { "retry-after": "5" });
    return engine;
  };

  app.post("/v1/moderate", async (req) => {
    const e = ready();
    const t0 = performance.now();
    const images: { id: string; bytes: Uint8Array }[] = [];
    if (req.isMultipart()) {
      let total = 0;
      for await (const part of req.parts()) {
        if (part.type !== "file") continue;
        const bytes = new Uint8Array(await part.toBuffer());
        total += bytes.byteLength;
        // Fastify's bodyLimit does not see multipart streams: the plugin's fileSize caps each file, this the sum.
        if (part.file.truncated || total > limits.bodyLimitBytes) throw new RequestError(413, "body_too_large", `${part.filename}: request body too large: the limit is ${limits.bodyLimitBytes} bytes (serve.body_limit_mb)`);
        images.push({ id: part.filename || `image${images.length}`, bytes });
      }
    } else {
      const body = req.body as { images?: unknown } | undefined;
      if (!body || typeof body !== "object" || !Array.isArray(body.images)) throw new RequestError(400, "bad_request", 'expected multipart files, or JSON {"images": [{"data": base64 or data URI, "id"?: string}]}');
      body.images.forEach((x: unknown, i: number) => {
        const item = (typeof x === "string" ? { data: x } : x) as { data?: unknown; id?: unknown } | null;
        if (!item || typeof item !== "object") throw new RequestError(400, "bad_request", `images[${i}]: expected {"data": ..., "id"?: ...}`);
        const id = typeof item.id === "string" && item.id ? item.id : `image${i}`;
        images.push({ id, bytes: bytesFromBase64(item.data, `images[${i}] (${id})`) });
      });
    }
    if (images.length === 0) throw new RequestError(400, "no_images", "the request holds no image");
    if (images.length > limits.maxImages) throw new RequestError(413, "too_many_images", `${images.length} images in one request; the limit is ${limits.maxImages} (serve.max_images)`);
    for (const x of images) await checkImageBytes(x.bytes, x.id, limits);
    if (batcher!.depth + images.length > limits.queueMax) throw new QueueFullError(limits.queueMax);
    const classified = await Promise.all(images.map((x) => batcher!.submit(x.id, x.bytes)));
    const latency = Math.round((performance.now() - t0) * 10) / 10;
    const results: ModerationResult[] = classified.map((c) => {
      const d = decide(c, e.rule);
      if (d.error !== undefined || d.flagged === null) {
        metrics.images.inc({ outcome: "error" });
        throw new RequestError(422, "corrupt_image", `${c.id}: ${d.error ?? "no decision"}`);
      }
      metrics.images.inc({ outcome: d.flagged ? "flagged" : "passed" });
      if (d.flagged) for (const k of d.categories.length ? d.categories : ["none"]) metrics.flags.inc({ category: k });
      return { id: c.id, flagged: d.flagged, categories: d.categories, score: d.score, threshold: d.threshold, threshold_source: e.thresholdSource, answer: c.answer, answer_kind: d.answerKind, category_scores: c.categoryScores, model: e.modelName, latency_ms: latency };
    });
    return { model: e.modelName, threshold_source: e.thresholdSource, results };
  });

  registerOpenAiRoute(app, ready, limits);

  return {
    app,
    metrics,
    setEngine(x: Engine) {
      engine = x;
      batcher = new Batcher((imgs) => x.classify(imgs), {
        maxBatch: limits.maxBatch,
        waitMs: limits.batchWaitMs,
        queueMax: limits.queueMax,
        cacheEntries: limits.cacheEntries,
        cacheTtlMs: limits.cacheTtlMs,
        onBatch: (n, s) => {
          metrics.batchSize.observe(n);
          metrics.batchSeconds.observe(s);
        },
        onCacheHit: () => metrics.cacheHits.inc(),
      });
    },
    idle: () => batcher?.idle() ?? Promise.resolve(),
    async drain() {
      draining = true;
      await app.close();
    },
  };
}
