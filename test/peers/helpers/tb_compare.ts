// Checks TensorBoard's reading of a run (tensorboard_peer.py) against the
// run's metrics.jsonl: every tag and step of the JSONL is in TensorBoard, with
// the value rounded to float32 (TensorBoard's simple_value is a float32;
// NaN matches NaN, infinities match), the same wall time (a float64 on both
// sides), and nothing else.
import assert from "node:assert/strict";
import fs from "node:fs";

export interface TbRun {
  tags: Record<string, string[] | boolean>;
  scalars: Record<string, [number, number | string, number][]>;
  files: string[];
}

const num = (v: number | string): number => (typeof v === "string" ? Number(v) : v);

/** Parses metrics.jsonl ({"step", "time", "metrics"} per line; non-finite values as strings). */
export function readMetricsJsonl(file: string): { step: number; time: number; metrics: Record<string, number> }[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const o = JSON.parse(l) as { step: number; time: number; metrics: Record<string, number | string> };
      return { step: o.step, time: o.time, metrics: Object.fromEntries(Object.entries(o.metrics).map(([k, v]) => [k, num(v)])) };
    });
}

/** Asserts TensorBoard's scalars equal the JSONL's; returns the number of values compared. */
export function assertTbMatchesJsonl(tb: TbRun, jsonlFile: string): number {
  const records = readMetricsJsonl(jsonlFile);
  assert.ok(records.length > 0, `${jsonlFile} is empty`);
  const want = new Map<string, [number, number, number][]>();
  for (const r of records) for (const [k, v] of Object.entries(r.metrics)) (want.get(k) ?? want.set(k, []).get(k)!).push([r.step, v, r.time]);
  assert.deepEqual(Object.keys(tb.scalars).sort(), [...want.keys()].sort(), "scalar tags in TensorBoard vs metrics.jsonl");
  let n = 0;
  for (const [tag, rows] of want) {
    const got = tb.scalars[tag];
    assert.equal(got.length, rows.length, `${tag}: ${got.length} events in TensorBoard, ${rows.length} in metrics.jsonl`);
    rows.forEach(([step, value, time], i) => {
      const [gs, gv, gt] = got[i];
      assert.equal(gs, step, `${tag}[${i}]: step`);
      const v32 = Math.fround(value);
      const g = num(gv);
      assert.ok(Object.is(g, v32) || (Number.isNaN(g) && Number.isNaN(v32)) || g === v32, `${tag} at step ${step}: TensorBoard ${g}, metrics.jsonl ${value} (float32 ${v32})`);
      assert.equal(gt, time, `${tag} at step ${step}: wall time`);
      n++;
    });
  }
  return n;
}
