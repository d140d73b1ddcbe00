// `vlm-grpo serve`: the moderation HTTP server on a trained folder.
import { explicitKeys } from "../../config/explicit_keys.js";
import { loadConfig } from "../../config/load.js";
import { runConfigSchema } from "../../config/run_config.js";
import { startServer } from "../../serve/server.js";
import { flag, has, numberFlag, parseArgs, UsageError } from "../args.js";

const USAGE = `usage: vlm-grpo serve --model DIR [options]
Serves the model over HTTP: POST /v1/moderate (multipart or JSON base64 images),
POST /v1/chat/completions (OpenAI-compatible), GET /healthz, /readyz, /metrics,
and a review page at /.

  --model DIR              model folder (its vlm_grpo.json card gives prompt, categories, thresholds)
  --lora DIR               a PEFT adapter on top
  --host H                 listen address (default serve.host, 127.0.0.1)
  --port N                 TCP port (default serve.port, 8080; 0 = any free port)
  --threshold X            flag when the (calibrated) score >= X
  --threshold-from FILE    an eval's metrics.json: its thresholds for --target-recall
  --eval-model NAME        the model entry in that metrics.json (default: the last)
  --target-recall R        the saved (card) or evaluated (metrics.json) thresholds for recall R
  --use-answer             decide from the model's answer even when thresholds are saved
                           (default: the card's saved thresholds, else the answer)
  --device D, --dtype float32|bfloat16
  --config FILE, --serve.KEY VALUE   any serve.* key (vlm-grpo config defaults lists them:
                           max_batch, batch_wait_ms, queue_max, body_limit_mb, max_pixels,
                           decode_timeout_ms, max_images, cache_entries, cache_ttl_s, ...)

SIGTERM or SIGINT: stop accepting, finish in-flight requests (at most serve.drain_timeout_s), exit 0.`;

export async function serveCommand(argv: readonly string[]): Promise<number> {
  const p = parseArgs(
    argv,
    {
      model: { value: true },
      lora: { value: true },
      host: { value: true },
      port: { value: true },
      threshold: { value: true },
      "threshold-from": { value: true },
      "eval-model": { value: true },
      "target-recall": { value: true },
      "use-answer": { value: false },
      device: { value: true },
      dtype: { value: true },
      config: { value: true },
      help: { value: false },
    },
    { allowOverrides: true },
  );
  if (has(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  if (p.positionals.length) throw new UsageError(`unexpected argument '${p.positionals[0]}'\n${USAGE}`);
  const overrides = [...p.overrides];
  const cfg = loadConfig(runConfigSchema, { file: flag(p, "config"), overrides });
  const model = flag(p, "model") ?? (explicitKeys(flag(p, "config"), overrides)("model") ? cfg.model : undefined);
  if (!model) throw new UsageError("--model DIR is required");
  if (flag(p, "host")) cfg.serve.host = flag(p, "host")!;
  if (has(p, "port")) cfg.serve.port = numberFlag(p, "port", 8080, { int: true, min: 0, max: 65535 });
  const dtype = flag(p, "dtype") ?? cfg.dtype;
  if (dtype !== "float32" && dtype !== "bfloat16") throw new UsageError(`--dtype: expected float32 or bfloat16, got '${dtype}'`);
  const exclusive = ["threshold", "threshold-from", "use-answer"].filter((k) => has(p, k));
  if (exclusive.length > 1) throw new UsageError(`--${exclusive.join(" and --")} exclude each other`);
  if (has(p, "use-answer") && has(p, "target-recall")) throw new UsageError("--use-answer and --target-recall exclude each other");
  if (has(p, "threshold") && has(p, "target-recall")) throw new UsageError("--threshold and --target-recall exclude each other");
  const threshold = has(p, "threshold") ? numberFlag(p, "threshold", 0, { min: 0, max: 1 }) : undefined;
  const targetRecall = has(p, "target-recall") ? numberFlag(p, "target-recall", 0, { min: 0, max: 1 }) : undefined;

  const server = await startServer(cfg.serve, {
    modelDir: model,
    adapterDir: flag(p, "lora"),
    device: flag(p, "device") ?? cfg.device,
    dtype,
    threshold: { threshold, thresholdFrom: flag(p, "threshold-from"), evalModel: flag(p, "eval-model"), targetRecall, useAnswer: has(p, "use-answer") },
  });
  console.error(`serve: listening on ${server.url} (loading ${model}...)`);
  let signalled = false;
  const done = new Promise<number>((resolve) => {
    const onSignal = (sig: string) => {
      if (signalled) return;
      signalled = true;
      console.error(`serve: ${sig}: draining in-flight requests (at most ${cfg.serve.drain_timeout_s} s)`);
      const timer = setTimeout(() => {
        console.error(`serve: requests still running after ${cfg.serve.drain_timeout_s} s; exiting anyway`);
        process.exit(1);
      }, cfg.serve.drain_timeout_s * 1000);
      timer.unref();
      server.stop().then(
        () => resolve(0),
        (e) => {
          console.error(`serve: error while stopping: ${(e as Error).message}`);
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
    server.loaded.then(
      (e) => console.error(`serve: ready: ${e.modelName}; deciding by ${e.thresholdSource}; max_batch ${cfg.serve.max_batch}, batch_wait_ms ${cfg.serve.batch_wait_ms}`),
      (e) => {
        console.error(`serve: cannot load the model: ${(e as Error).message}`);
        void server.stop().finally(() => resolve(1));
      },
    );
  });
  return done;
}
