// Starting and stopping the server: listen first (so /healthz and /readyz
// answer while the model loads), then load the model and mark it ready.
// stop() drains: new requests get 503, in-flight ones finish, then the model
// is freed.
import type { RunConfig } from "../config/run_config.js";
import { buildServeApp, type ServeApp, type ServeLimits } from "./app.js";
import { Engine, type EngineOptions } from "./engine.js";

export type ServeConfig = RunConfig["serve"];

export function limitsFromConfig(c: ServeConfig): ServeLimits {
  return {
    maxBatch: c.max_batch,
    batchWaitMs: c.batch_wait_ms,
    queueMax: c.queue_max,
    bodyLimitBytes: Math.round(c.body_limit_mb * 1024 * 1024),
    maxPixels: c.max_pixels,
    decodeTimeoutMs: c.decode_timeout_ms,
    maxImages: c.max_images,
    cacheEntries: c.cache_entries,
    cacheTtlMs: c.cache_ttl_s * 1000,
  };
}

export interface RunningServer {
  serve: ServeApp;
  /** http://host:port */
  url: string;
  /** Resolves with the engine once the model is loaded (rejects when loading fails). */
  loaded: Promise<Engine>;
  /** Stops accepting, waits for in-flight requests, frees the model. */
  stop(): Promise<void>;
}

export async function startServer(cfg: ServeConfig, engine: Omit<EngineOptions, "maxPixels" | "maxNewTokens" | "maxBatch">): Promise<RunningServer> {
  const serve = buildServeApp(limitsFromConfig(cfg));
  await serve.app.listen({ host: cfg.host, port: cfg.port });
  const addr = serve.app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : cfg.port;
  const host = cfg.host.includes(":") ? `[${cfg.host}]` : cfg.host;
  let loadedEngine: Engine | null = null;
  const loaded = Engine.load({ ...engine, maxPixels: cfg.max_pixels, maxNewTokens: cfg.max_new_tokens, maxBatch: cfg.max_batch }).then((e) => {
    loadedEngine = e;
    serve.setEngine(e);
    return e;
  });
  let stopping: Promise<void> | null = null;
  return {
    serve,
    url: `http://${host}:${port}`,
    loaded,
    stop() {
      stopping ??= (async () => {
        await serve.drain();
        await serve.idle();
        await loaded.catch(() => {});
        (loadedEngine as Engine | null)?.dispose();
      })();
      return stopping;
    },
  };
}
