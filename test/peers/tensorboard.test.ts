// TensorBoard against our event files (src/io/sinks/tensorboard.ts),
// read by TensorBoard 2.21's own EventAccumulator:
//   - a log written through the sinks the trainers use (JSONL + TensorBoard,
//     same wall time) with awkward values: NaN, +-Infinity, -0, values that
//     float32 rounds, float32 overflow to infinity, the largest safe step,
//     unicode and slash-nested tags, an empty metrics call, several files in
//     one log dir;
//   - every tag and step of metrics.jsonl is in TensorBoard with the value
//     rounded to float32 (TensorBoard's simple_value is a float32: e.g. 0.1
//     reads back as 0.10000000149011612) and the same float64 wall time.
// Our sink writes scalars only: no text summaries, no hparams (the resolved
// config is saved as YAML beside the checkpoints instead), which this test
// checks by TensorBoard's own tag listing.
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";

import { JsonlSink } from "../../src/io/sinks/jsonl.js";
import { MultiSink } from "../../src/io/sinks/multi.js";
import { TensorBoardSink } from "../../src/io/sinks/tensorboard.js";
import { peerSkip, runPython, scratch } from "./helpers/bridge.js";
import { assertTbMatchesJsonl, type TbRun } from "./helpers/tb_compare.js";

const skip = peerSkip();
const work = scratch("vlm-peers-tb-");
after(work.cleanup);

describe("TensorBoard's EventAccumulator reads our event files", { skip }, () => {
  test("every tag and step of metrics.jsonl, float32-rounded, same wall time; scalars only", (t) => {
    const run = path.join(work.dir, "run");
    const sink = new MultiSink([new JsonlSink(path.join(run, "metrics.jsonl")), new TensorBoardSink(path.join(run, "tb"), { hostname: "peer" })]);
    const t0 = 1_733_000_000.123456;
    const rows: [number, Record<string, number>][] = [
      [0, { "train/loss": 2.5, "train/lr": 1e-4, "ünï/ködé": 0.1 }],
      [1, { "train/loss": Number.NaN, "train/lr": 9.999999e-5, "eval/recall": 1 / 3 }],
      [2, { "train/loss": Infinity, "train/grad_norm": -Infinity, "train/zero": -0 }],
      [3, { "train/loss": 1e39, "train/tiny": 1e-46, "train/big": 16_777_217 }], // float32: inf, 0, 16777216
      [5, {}],
      [7, { "train/loss": -123.456, "a/b/c/d": 42 }],
      [Number.MAX_SAFE_INTEGER, { "train/loss": 0.5 }],
    ];
    rows.forEach(([step, m], i) => sink.log(step, m, t0 + i * 0.25));
    sink.close();
    // A second writer in the same folder (a resumed run) gets its own file.
    const resumed = new MultiSink([new JsonlSink(path.join(run, "metrics.jsonl")), new TensorBoardSink(path.join(run, "tb"), { hostname: "peer" })]);
    resumed.log(Number.MAX_SAFE_INTEGER, { "train/resumed": 7 }, t0 + 10);
    resumed.close();

    const tb = runPython<{ runs: Record<string, TbRun> }>("tensorboard_peer.py", { logdirs: [path.join(run, "tb")] }, { dir: work.dir }).response.runs[path.join(run, "tb")];
    assert.equal(tb.files.length, 2, `two event files, got ${tb.files.join(", ")}`);
    const n = assertTbMatchesJsonl(tb, path.join(run, "metrics.jsonl"));
    assert.equal(n, 16);
    // Spot values, as TensorBoard returns them.
    assert.equal(Number(tb.scalars["ünï/ködé"][0][1]), Math.fround(0.1));
    assert.equal(Number(tb.scalars["train/big"][0][1]), 16_777_216);
    assert.equal(Number(tb.scalars["train/loss"][3][1]), Infinity);
    for (const kind of ["tensors", "images", "audio", "histograms", "distributions", "graph", "meta_graph", "run_metadata"]) {
      const v = tb.tags[kind];
      assert.ok(v === undefined || v === false || (Array.isArray(v) && v.length === 0), `no ${kind} expected, TensorBoard lists ${JSON.stringify(v)}`);
    }
    t.diagnostic(`TensorBoard tag kinds: ${JSON.stringify(tb.tags)}`);
  });
});
