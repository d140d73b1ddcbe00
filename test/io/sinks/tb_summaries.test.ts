// TensorBoard text and hparams summaries: the bytes, field by field (so the
// format is pinned without Python), the same bytes as TensorBoard's own
// Python writer where one exists, and a real TensorBoard (its data provider,
// Text plugin and HParams session listing) reading a file our sink wrote.
// The Python parts run when an interpreter with the tensorboard package is
// found (TB_PYTHON, else PYTHON, else python3) and are skipped otherwise.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { readFields } from "../../../src/io/sinks/protobuf.js";
import { decodeStringTensor, flattenHParams, hparamsEndValue, hparamsStartValue, NULL_TENSOR, SESSION_START_TAG, stringTensor, textValue } from "../../../src/io/sinks/tb_summaries.js";
import { dropEventsAfter, encodeSummary, readEventFile, TensorBoardSink } from "../../../src/io/sinks/tensorboard.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-tbsum-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const PYTHON = process.env.TB_PYTHON ?? process.env.PYTHON ?? "python3";
const hasTensorBoard = spawnSync(PYTHON, ["-c", "import tensorboard"], { stdio: "ignore" }).status === 0;
const skipPython = hasTensorBoard ? false : `no tensorboard package in ${PYTHON} (set TB_PYTHON)`;

describe("the bytes of the summaries", () => {
  test("a scalar string tensor: dtype DT_STRING, an empty (scalar) shape, one string_val", () => {
    // 08 07 = dtype 7; 12 00 = tensor_shape {}; 42 02 'h' 'i' = string_val "hi"
    assert.equal(hex(stringTensor("hi")), "08071200" + "4202" + "6869");
    assert.deepEqual(decodeStringTensor(stringTensor("héllo | ⏎")), ["héllo | ⏎"]);
    assert.throws(() => decodeStringTensor(NULL_TENSOR), /DT_STRING/);
  });

  test("a text summary equals what tensorboard.plugins.text.summary_v2.text_pb writes", () => {
    // python -c "from tensorboard.plugins.text import summary_v2 as t; print(t.text_pb('completions', 'hi | x').SerializeToString().hex())"
    const PYTHON_TEXT_PB = "0a250a0b636f6d706c6574696f6e73420c0807120042066869207c20784a080a060a0474657874";
    assert.equal(hex(encodeSummary([textValue("completions", "hi | x")])), PYTHON_TEXT_PB);
  });

  test("the hparams plugin's null tensor is a length-0 float vector (6 bytes)", () => {
    // python: tensorboard.plugins.hparams.metadata.NULL_TENSOR.SerializeToString().hex()
    assert.equal(hex(NULL_TENSOR), "080112021200");
  });

  test("session_start_info: one map entry per hparam (keys sorted), a google.protobuf.Value of the right kind, the start time", () => {
    const v = hparamsStartValue({ lr: 0.5, name: "x", on: false }, 12.5);
    assert.equal(v.tag, SESSION_START_TAG);
    assert.equal(v.plugin!.name, "hparams");
    const data = readFields(v.plugin!.content);
    assert.deepEqual(data.map((f) => f.field), [3], "HParamsPluginData: version 0 omitted, session_start_info = 3");
    const start = readFields(data[0].value as Uint8Array);
    assert.deepEqual(start.map((f) => f.field), [1, 1, 1, 5]);
    const entry = (i: number) => readFields(start[i].value as Uint8Array);
    const value = (i: number) => readFields(entry(i)[1].value as Uint8Array)[0];
    assert.deepEqual(entry(0).map((f) => f.field), [1, 2]);
    assert.equal(Buffer.from(entry(0)[0].value as Uint8Array).toString(), "lr");
    assert.equal(value(0).field, 2, "number_value");
    assert.equal(hex(value(0).value as Uint8Array), "000000000000e03f", "0.5 as a little-endian double");
    assert.equal(value(1).field, 3, "string_value");
    assert.equal(Buffer.from(value(1).value as Uint8Array).toString(), "x");
    assert.equal(value(2).field, 4, "bool_value");
    assert.equal(value(2).value, 0n, "false is written: a oneof member is always serialized");
    assert.equal(hex(start[3].value as Uint8Array), "0000000000002940", "start_time_secs 12.5");
    // The whole Summary for {a: 1} at 12.5 s, by hand (lengths in hex):
    const tag = Buffer.from(SESSION_START_TAG).toString("hex"); // 28 bytes
    const expected =
      "0a50" + // Summary.value, 80 bytes
      ("0a1c" + tag) + // Value.tag
      "4206080112021200" + // Value.tensor = NULL_TENSOR
      "4a28" + // Value.metadata, 40 bytes
      "0a26" + // SummaryMetadata.plugin_data, 38 bytes
      "0a0768706172616d73" + // PluginData.plugin_name "hparams"
      "121b" + // PluginData.content = HParamsPluginData, 27 bytes
      "1a19" + // HParamsPluginData.session_start_info, 25 bytes
      "0a0e" + // SessionStartInfo.hparams entry, 14 bytes
      "0a0161" + // key "a"
      "1209" + // value: google.protobuf.Value, 9 bytes
      "11000000000000f03f" + // number_value 1.0
      "290000000000002940"; // start_time_secs 12.5
    assert.equal(hex(encodeSummary([hparamsStartValue({ a: 1 }, 12.5)])), expected);
  });

  test("session_end_info: status 1 (success) or 2 (failure) and the end time", () => {
    const ok = readFields(readFields(hparamsEndValue("success", 3).plugin!.content)[0].value as Uint8Array);
    assert.deepEqual(ok.map((f) => [f.field, f.field === 1 ? f.value : hex(f.value as Uint8Array)]), [
      [1, 1n],
      [2, "0000000000000840"],
    ]);
    const bad = readFields(readFields(hparamsEndValue("failure", 3).plugin!.content)[0].value as Uint8Array);
    assert.equal(bad[0].value, 2n);
  });

  test("flattenHParams: dotted keys, scalars kept, lists as JSON, undefined left out", () => {
    assert.deepEqual(flattenHParams({ a: 1, s: { b: "x", c: [1, 2], d: { e: true } }, u: undefined }), { a: 1, "s.b": "x", "s.c": "[1,2]", "s.d.e": true });
    assert.throws(() => hparamsStartValue({ f: (() => 1) as unknown as number }, 0), /'f' must be a number, string or boolean/);
  });
});

describe("a resumed run's event files", () => {
  test("dropEventsAfter keeps events up to the step and drops the tags asked for", () => {
    const dir = path.join(tmp, "drop");
    const sink = new TensorBoardSink(dir, { now: () => 1000, hostname: "h" });
    sink.hparams({ lr: 1 }, 1);
    for (let s = 1; s <= 4; s++) sink.log(s, { loss: s });
    sink.text(3, "completions", "three");
    sink.close();
    assert.equal(dropEventsAfter(sink.path, 2, (t) => t === SESSION_START_TAG), 4, "steps 3, 4, the text at 3 and the hparams event");
    const evs = readEventFile(sink.path);
    assert.deepEqual(
      evs.map((e) => [e.step, e.values?.map((v) => v.tag) ?? e.file_version]),
      [
        [0, "brain.Event:2"],
        [1, ["loss"]],
        [2, ["loss"]],
      ],
    );
    assert.equal(dropEventsAfter(sink.path, 2), 0, "nothing left to drop: the file is not rewritten");
  });
});

const READER = String.raw`
import sys, json
import numpy as np
from google.protobuf import json_format
from tensorboard import context as tbctx
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem, data_provider as dp
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import backend_context, list_session_groups, api_pb2
from tensorboard.plugins.text import text_plugin
logdir = sys.argv[1]
mux = pem.EventMultiplexer(); mux.AddRunsFromDirectory(logdir); mux.Reload()
prov = dp.MultiplexerDataProvider(mux, logdir)
ctx = tbctx.RequestContext()
texts = prov.read_tensors(ctx, experiment_id="", plugin_name="text", downsample=1000)
html = {tag: [[d.step, text_plugin.text_array_to_html(np.array(d.numpy), True)] for d in data] for run, tags in texts.items() for tag, data in tags.items()}
scalars = prov.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=1000)
scalars = {tag: [[d.step, d.value] for d in data] for run, tags in scalars.items() for tag, data in tags.items()}
bc = backend_context.Context(base_plugin.TBContext(logdir=logdir, data_provider=prov, multiplexer=mux))
req = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=10, allowed_statuses=[0, 1, 2, 3])
groups = list_session_groups.Handler(ctx, bc, "", req).run().session_groups
groups = [{"hparams": {k: json_format.MessageToDict(v) for k, v in g.hparams.items()}, "metrics": {m.name.tag: m.value for s in g.sessions for m in s.metric_values}, "status": [s.status for s in g.sessions]} for g in groups]
print(json.dumps({"html": html, "scalars": scalars, "groups": groups}))
`;

describe("read by TensorBoard", { skip: skipPython }, () => {
  test("text renders as a Markdown table, hparams list as a session with its metrics and end status", () => {
    const dir = path.join(tmp, "tb-read", "run");
    const sink = new TensorBoardSink(dir);
    sink.hparams(flattenHParams({ grpo: { lr: 0.001, loss_type: "dapo", stratify: true }, data: { categories: ["nudity", "weapons"] } }));
    sink.log(1, { "eval/recall": 0.5, "train/loss": 2 });
    sink.text(1, "completions", "| prompt | completion |\n|---|---|\n| 00012 | `<answer>safe</answer>` |");
    sink.log(2, { "eval/recall": 0.75 });
    sink.sessionEnd("failure");
    sink.close();
    const r = spawnSync(PYTHON, ["-c", READER, path.dirname(dir)], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.equal(out.html.completions.length, 1);
    assert.equal(out.html.completions[0][0], 1);
    assert.match(out.html.completions[0][1], /<table>[\s\S]*<th>prompt<\/th>[\s\S]*<td><code>&lt;answer&gt;safe&lt;\/answer&gt;<\/code><\/td>/);
    assert.deepEqual(out.scalars["eval/recall"], [
      [1, 0.5],
      [2, 0.75],
    ]);
    assert.equal(out.groups.length, 1);
    assert.deepEqual(out.groups[0].hparams, { "grpo.lr": 0.001, "grpo.loss_type": "dapo", "grpo.stratify": true, "data.categories": '["nudity","weapons"]' });
    assert.deepEqual(out.groups[0].metrics, { "eval/recall": 0.75, "train/loss": 2 }, "the session's metrics are its scalars' last values");
    assert.deepEqual(out.groups[0].status, [2], "STATUS_FAILURE");
  });
});
