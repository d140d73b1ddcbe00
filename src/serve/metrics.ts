// The server's Prometheus metrics, written in the text exposition format
// (version 0.0.4) by hand: counters by label set and cumulative histograms.
// Names follow Prometheus conventions (_total for counters, _seconds for time).

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64];

const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const labelText = (labels: Record<string, string>) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
};

class Counter {
  private readonly values = new Map<string, { labels: Record<string, string>; n: number }>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Record<string, string> = {}, by = 1): void {
    const k = labelText(labels);
    const v = this.values.get(k) ?? { labels, n: 0 };
    v.n += by;
    this.values.set(k, v);
  }
  get(labels: Record<string, string> = {}): number {
    return this.values.get(labelText(labels))?.n ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const v of this.values.values()) lines.push(`${this.name}${labelText(v.labels)} ${v.n}`);
    return lines.join("\n");
  }
}

class Histogram {
  private readonly series = new Map<string, { labels: Record<string, string>; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}
  observe(value: number, labels: Record<string, string> = {}): void {
    const k = labelText(labels);
    const s = this.series.get(k) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.buckets.forEach((b, i) => {
      if (value <= b) s.counts[i]++;
    });
    s.sum += value;
    s.count++;
    this.series.set(k, s);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: String(b) })} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`);
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return lines.join("\n");
  }
}

export class ServeMetrics {
  readonly requests = new Counter("vlm_serve_requests_total", "HTTP requests by route and status code");
  readonly latency = new Histogram("vlm_serve_request_duration_seconds", "HTTP request latency by route", LATENCY_BUCKETS);
  readonly batchSize = new Histogram("vlm_serve_batch_size", "images per model forward", BATCH_BUCKETS);
  readonly batchSeconds = new Histogram("vlm_serve_batch_duration_seconds", "time of one batched classification", LATENCY_BUCKETS);
  readonly images = new Counter("vlm_serve_images_total", "images decided, by outcome (flagged, passed, error)");
  readonly flags = new Counter("vlm_serve_flags_total", "flagged images by category (none: flagged without a category)");
  readonly cacheHits = new Counter("vlm_serve_cache_hits_total", "images answered from the classification cache");
  readonly rejected = new Counter("vlm_serve_queue_rejections_total", "requests refused with 429 because the queue was full");

  constructor(
    private readonly queueDepth: () => number,
    private readonly inFlight: () => number,
  ) {}

  render(): string {
    const gauge = ["# HELP vlm_serve_queue_depth images waiting for a batch", "# TYPE vlm_serve_queue_depth gauge", `vlm_serve_queue_depth ${this.queueDepth()}`, "# HELP vlm_serve_in_flight_requests /v1/ requests being answered", "# TYPE vlm_serve_in_flight_requests gauge", `vlm_serve_in_flight_requests ${this.inFlight()}`].join("\n");
    return [this.requests, this.latency, this.batchSize, this.batchSeconds, this.images, this.flags, this.cacheHits, this.rejected].map((m) => m.render()).concat(gauge).join("\n") + "\n";
  }
}
