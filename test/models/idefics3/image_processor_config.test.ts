// preprocessor_config.json / processor_config.json: SmolVLM-256M-Instruct's
// real files, transformers' defaults for absent keys, errors naming the file
// and key, transformers 5's nested form, and writeProcessorFiles' exact output.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import {
  IDEFICS3_DEFAULTS,
  readProcessorConfig,
  resolveImageProcessorConfig,
  writeProcessorFiles,
} from "../../../src/models/idefics3/image_processor_config.js";
import { tempDir } from "../../io/helpers.js";

const tmp = tempDir("img-config");

// HuggingFaceTB/SmolVLM-256M-Instruct's preprocessor_config.json and processor_config.json.
const SMOLVLM_256M_PRE = {
  do_convert_rgb: true,
  do_image_splitting: true,
  do_normalize: true,
  do_pad: true,
  do_rescale: true,
  do_resize: true,
  image_mean: [0.5, 0.5, 0.5],
  image_processor_type: "Idefics3ImageProcessor",
  image_std: [0.5, 0.5, 0.5],
  max_image_size: { longest_edge: 512 },
  processor_class: "Idefics3Processor",
  resample: 1,
  rescale_factor: 0.00392156862745098,
  size: { longest_edge: 2048 },
};
const SMOLVLM_256M_PROC = { image_seq_len: 64, processor_class: "Idefics3Processor" };

function folder(name: string, pre?: unknown, proc?: unknown): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  if (pre !== undefined) fs.writeFileSync(path.join(dir, "preprocessor_config.json"), typeof pre === "string" ? pre : JSON.stringify(pre));
  if (proc !== undefined) fs.writeFileSync(path.join(dir, "processor_config.json"), typeof proc === "string" ? proc : JSON.stringify(proc));
  return dir;
}

test("SmolVLM-256M-Instruct's files resolve to its settings", () => {
  const c = readProcessorConfig(folder("smolvlm", SMOLVLM_256M_PRE, SMOLVLM_256M_PROC));
  assert.deepEqual(c, {
    doConvertRgb: true,
    doResize: true,
    size: { longestEdge: 2048 },
    resample: 1,
    doImageSplitting: true,
    maxImageSize: 512,
    doRescale: true,
    rescaleFactor: 1 / 255,
    doNormalize: true,
    imageMean: [0.5, 0.5, 0.5],
    imageStd: [0.5, 0.5, 0.5],
    doPad: true,
    imageSeqLen: 64,
  });
});

test("absent keys take transformers' defaults (longest edge 4*364, tiles 364, LANCZOS, 169 tokens)", () => {
  const c = readProcessorConfig(folder("empty", {}));
  assert.deepEqual(c, { ...IDEFICS3_DEFAULTS, size: { longestEdge: 1456 } });
  assert.equal(c.imageSeqLen, 169);
  assert.equal(c.maxImageSize, 364);
  assert.equal(c.resample, 1);
  // A scalar mean/std applies to all three channels; size may be an exact height x width.
  const d = resolveImageProcessorConfig({ image_mean: 0.25, image_std: 2, size: { height: 30, width: 40 } });
  assert.deepEqual([d.imageMean, d.imageStd, d.size], [[0.25, 0.25, 0.25], [2, 2, 2], { height: 30, width: 40 }]);
});

test("transformers 5: settings nested under processor_config.json's image_processor", () => {
  const c = readProcessorConfig(folder("v5", undefined, { image_processor: SMOLVLM_256M_PRE, image_seq_len: 64 }));
  assert.equal(c.maxImageSize, 512);
  assert.equal(c.imageSeqLen, 64);
});

test("errors name the file and the key", () => {
  const dir = (n: string, pre: unknown, proc?: unknown) => folder(n, pre, proc);
  const pre = (d: string) => path.join(d, "preprocessor_config.json").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  let d = dir("bad-max", { max_image_size: { longest_edge: "big" } });
  assert.throws(() => readProcessorConfig(d), new RegExp(`${pre(d)}: max_image_size.longest_edge must be a positive integer, got "big"`));
  d = dir("bad-max2", { max_image_size: 512 });
  assert.throws(() => readProcessorConfig(d), /max_image_size must be \{"longest_edge": positive integer\}, got 512/);
  d = dir("bad-size", { size: { shortest_edge: 10 } });
  assert.throws(() => readProcessorConfig(d), /preprocessor_config\.json: size must have "longest_edge"/);
  d = dir("bad-bool", { do_resize: "yes" });
  assert.throws(() => readProcessorConfig(d), /preprocessor_config\.json: do_resize must be true or false, got "yes"/);
  d = dir("bad-resample", { resample: 7 });
  assert.throws(() => readProcessorConfig(d), /resample must be a PIL filter number 0\.\.5 \(0=NEAREST, 1=LANCZOS/);
  d = dir("bad-mean", { image_mean: [0.5, 0.5] });
  assert.throws(() => readProcessorConfig(d), /image_mean must be a number or a list of 3 numbers/);
  d = dir("bad-std", { image_std: [0.5, 0, 0.5] });
  assert.throws(() => readProcessorConfig(d), /image_std must hold finite, non-zero numbers/);
  d = dir("bad-rescale", { rescale_factor: -1 });
  assert.throws(() => readProcessorConfig(d), /rescale_factor must be a positive number, got -1/);
  d = dir("bad-seq", {}, { image_seq_len: 0 });
  assert.throws(() => readProcessorConfig(d), /processor_config\.json: image_seq_len must be a positive integer, got 0/);
  d = dir("bad-json", "{ not json");
  assert.throws(() => readProcessorConfig(d), /preprocessor_config\.json: invalid JSON/);
  d = dir("array-json", "[1, 2]");
  assert.throws(() => readProcessorConfig(d), /preprocessor_config\.json: expected a JSON object/);
  d = dir("none", undefined);
  assert.throws(() => readProcessorConfig(d), /none: no preprocessor_config\.json/);
});

test("writeProcessorFiles: transformers' format (sorted keys), read back to the same settings", async () => {
  const d = folder("written");
  await writeProcessorFiles(d, { imageSize: 512, imageSeqLen: 64, doImageSplitting: true, longestEdge: 2048 });
  const text = fs.readFileSync(path.join(d, "preprocessor_config.json"), "utf8");
  // Same content as SmolVLM-256M-Instruct's own file, keys in the same (sorted) order.
  assert.equal(text, JSON.stringify(SMOLVLM_256M_PRE, null, 2) + "\n");
  assert.equal(fs.readFileSync(path.join(d, "processor_config.json"), "utf8"), JSON.stringify(SMOLVLM_256M_PROC, null, 2) + "\n");
  assert.deepEqual(Object.keys(JSON.parse(text)), Object.keys(JSON.parse(text)).sort());
  const c = readProcessorConfig(d);
  assert.deepEqual([c.maxImageSize, c.size, c.doImageSplitting, c.imageSeqLen], [512, { longestEdge: 2048 }, true, 64]);

  // longestEdge defaults to 4 * imageSize.
  const e = folder("written-default");
  await writeProcessorFiles(e, { imageSize: 32, imageSeqLen: 4, doImageSplitting: false });
  const ce = readProcessorConfig(e);
  assert.deepEqual([ce.size, ce.maxImageSize, ce.doImageSplitting], [{ longestEdge: 128 }, 32, false]);
  await assert.rejects(writeProcessorFiles(e, { imageSize: 0, imageSeqLen: 4, doImageSplitting: true }), /writeProcessorFiles: imageSize must be a positive integer, got 0/);
});
