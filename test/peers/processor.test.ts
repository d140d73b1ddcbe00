// The Idefics3 image processor and chat template against transformers' own
// (Idefics3Processor with its PIL backend, Idefics3ImageProcessorPil), on a
// corpus that test/peers/py/idefics3_processor_peer.py draws with Pillow:
// sizes and aspect ratios (upscaling, a 1-pixel-wide, 1-pixel-high and 1x1
// image), grayscale, bilevel, palette (opaque and with a transparent index),
// RGBA and LA with varying alpha, 16-bit grayscale and RGB PNGs, RGB and CMYK JPEG, and
// the 8 EXIF orientations. Both sides open the same files (transformers through
// load_image: exif_transpose + convert("RGB")), with two processor configs:
// the tiny preset's (no splitting, 32 px) and a splitting one (longest edge 96,
// 32 px tiles, so up to 3 x 3 tiles + the global image).
// Checked per image: pixel_values and pixel_attention_mask, rows / cols, the
// expanded prompt's token ids and text. Checked per chat: the template's text
// and the token ids of processor.apply_chat_template(tokenize=True).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import type { ChatMessage } from "../../src/io/chat_template.js";
import { Idefics3Processor } from "../../src/models/idefics3/processor.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { HFTokenizer } from "../../src/io/tokenizer.js";
import { type Tensor, tidy } from "../../src/torch/index.js";
import { peerSkip, runPython, scratch } from "./helpers/bridge.js";
import { vlmGrpo } from "./helpers/cli.js";

/**
 * pixel_values must be identical. Both sides resize the same 8-bit pixels to
 * the same 8-bit values (ours re-implements Pillow's resampling) and map a
 * level v to (v / 255 - mean) / std rounded to float32 (transformers in
 * float64 then cast, ours from a float32 table of the 256 levels): the same
 * float32 for every level, so exact equality is expected and measured.
 */
const PIXEL_ATOL = 0;

interface CorpusItem {
  name: string;
  file: string;
  mode: string;
  size: [number, number];
  format: string;
}
interface ImageResult {
  rows: number;
  cols: number;
  tiles: number;
  input_ids: number[];
  text: string;
}
interface PeerResponse {
  corpus: CorpusItem[];
  configs: Record<string, { image_processor: string; images: Record<string, ImageResult> }>;
  chats: Record<string, Record<string, { text: string; input_ids: number[] }>>;
}

/** The corpus idefics3_processor_peer.py draws, in its order. */
const CORPUS_NAMES = [
  ...["32x32", "48x48", "100x37", "37x100", "200x64", "64x200", "33x33", "17x9", "9x17", "300x180", "1x50", "50x1", "1x1"].map((s) => `rgb_${s}`),
  "gray_L",
  "bilevel_1",
  "palette_P",
  "palette_P_transparent",
  "rgba_gradient_alpha",
  "rgba_opaque",
  "la_alpha",
  "gray16_I16",
  "rgb16",
  "rgb_jpeg",
  "cmyk_jpeg",
  ...[1, 2, 3, 4, 5, 6, 7, 8].map((k) => `exif_orientation_${k}`),
];

const PROMPT = "<|im_start|>User:<image>Is it offensive?<end_of_utterance>\nAssistant:";
const CHATS: { name: string; addGenerationPrompt: boolean; images: string[]; messages: ChatMessage[] }[] = [
  {
    name: "system + user with an image, generation prompt",
    addGenerationPrompt: true,
    images: ["rgb_48x48"],
    messages: [
      { role: "system", content: [{ type: "text", text: "You moderate images." }] },
      { role: "user", content: [{ type: "image" }, { type: "text", text: "Is it offensive?" }] },
    ],
  },
  {
    name: "user / assistant / user, two images, no generation prompt",
    addGenerationPrompt: false,
    images: ["rgb_100x37", "gray_L"],
    messages: [
      { role: "user", content: [{ type: "text", text: "Look:" }, { type: "image" }] },
      { role: "assistant", content: [{ type: "text", text: "Nothing offensive." }] },
      { role: "user", content: [{ type: "image" }, { type: "text", text: "And this one?" }] },
    ],
  },
  {
    name: "text-only turns (plain string content)",
    addGenerationPrompt: true,
    images: [],
    messages: [
      { role: "system", content: "Answer briefly." },
      { role: "user", content: "hello" },
      { role: "assistant", content: "hi there" },
      { role: "user", content: "Categories: nudity, weapons?" },
    ],
  },
  {
    name: "text-only parts, assistant last, no generation prompt",
    addGenerationPrompt: false,
    images: [],
    messages: [
      { role: "user", content: [{ type: "text", text: "Is it safe?" }] },
      { role: "assistant", content: [{ type: "text", text: "safe" }] },
    ],
  },
];

const skip = peerSkip();
const work = scratch("vlm-peers-proc-");
after(work.cleanup);
let peer: PeerResponse;
const configDirs: Record<string, string> = {};

before(() => {
  if (skip) return;
  const tiny = path.join(work.dir, "nosplit");
  vlmGrpo(["init-model", "--arch", "idefics3", "--preset", "tiny", "--out", tiny, "--seed", "1"]);
  const split = path.join(work.dir, "split");
  fs.cpSync(tiny, split, { recursive: true });
  const pre = path.join(split, "preprocessor_config.json");
  fs.writeFileSync(pre, JSON.stringify({ ...JSON.parse(fs.readFileSync(pre, "utf8")), do_image_splitting: true, size: { longest_edge: 96 } }, null, 2));
  Object.assign(configDirs, { nosplit: tiny, split });
  const corpusDir = path.join(work.dir, "corpus");
  const file = (n: string) => path.join(corpusDir, `${n}.png`); // the chats use PNG images of the corpus
  peer = runPython<PeerResponse>(
    "idefics3_processor_peer.py",
    {
      corpus_dir: corpusDir,
      configs: Object.entries(configDirs).map(([name, dir]) => ({ name, dir })),
      prompt: PROMPT,
      chats: CHATS.map((c) => ({ name: c.name, messages: c.messages, add_generation_prompt: c.addGenerationPrompt, images: c.images.map(file) })),
    },
    { dir: work.dir },
  ).response;
});

async function processorFor(config: string): Promise<Idefics3Processor> {
  return Idefics3Processor.fromDir(configDirs[config], await HFTokenizer.fromDir(configDirs[config]));
}

for (const config of ["nosplit", "split"]) {
  describe(`image processor (${config}) vs transformers' Idefics3ImageProcessorPil`, { skip }, () => {
    test("transformers used its PIL backend", () => assert.equal(peer.configs[config].image_processor, "Idefics3ImageProcessorPil"));

    test("the corpus is the one these tests are declared for", () => assert.deepEqual(peer.corpus.map((c) => c.name), CORPUS_NAMES));
    for (const item of CORPUS_NAMES) {
      test(`${item}: pixel_values, masks, rows/cols and the expanded prompt identical`, async (t) => {
        const theirs = peer.configs[config].images[item];
        const c = peer.corpus.find((x) => x.name === item)!;
        const tensors = loadSafetensors(path.join(work.dir, "corpus", `${config}.safetensors`), { names: [`${item}.pixel_values`, `${item}.pixel_attention_mask`] });
        const processor = await processorFor(config);
        const batch = await processor.prepare([{ text: PROMPT, images: [c.file] }], { addSpecialTokens: true, returnPixelAttentionMask: true });
        try {
          assert.equal(batch.rows[0], theirs.rows, "rows");
          assert.equal(batch.cols[0], theirs.cols, "cols");
          assert.deepEqual((batch.inputIds.toList() as number[][])[0], theirs.input_ids, "input ids of the expanded prompt");
          assert.equal(batch.texts[0], theirs.text, "expanded prompt text");
          const pv: Tensor = tensors.get(`${item}.pixel_values`)!;
          const pm: Tensor = tensors.get(`${item}.pixel_attention_mask`)!;
          assert.deepEqual(batch.pixelValues.shape, pv.shape, "pixel_values shape");
          const d = tidy(() => batch.pixelValues.sub(pv).abs().max().item() as number);
          const levels = tidy(() => batch.pixelValues.sub(pv).abs().gt(1e-3).sum().item() as number);
          t.diagnostic(`${c.mode} ${c.format} ${c.size.join("x")}: ${theirs.tiles} tile(s), max |ours - transformers| ${d.toExponential(2)}, ${levels} values off by more than 1e-3`);
          assert.ok(d <= PIXEL_ATOL, `pixel_values: max |ours - transformers| = ${d} (${levels} values off by > 1e-3)`);
          assert.deepEqual(tidy(() => batch.pixelAttentionMask!.to("uint8").toList()), pm.toList(), "pixel_attention_mask");
        } finally {
          for (const x of [...tensors.values(), batch.inputIds, batch.attentionMask, batch.pixelValues, batch.pixelAttentionMask]) x?.dispose();
        }
      });
    }
  });

  describe(`chat template (${config}) vs processor.apply_chat_template`, { skip }, () => {
    for (const chat of CHATS) {
      test(`${chat.name}: text and token ids identical`, async () => {
        const theirs = peer.chats[config][chat.name];
        const tokenizer = await HFTokenizer.fromDir(configDirs[config]);
        const text = tokenizer.applyChatTemplate(chat.messages, { addGenerationPrompt: chat.addGenerationPrompt });
        assert.equal(text, theirs.text, "rendered text");
        const processor = await Idefics3Processor.fromDir(configDirs[config], tokenizer);
        const files = chat.images.map((n) => peer.corpus.find((x) => x.name === n)!.file);
        const batch = await processor.prepare([{ text, images: files }]);
        try {
          assert.deepEqual((batch.inputIds.toList() as number[][])[0], theirs.input_ids, "token ids");
        } finally {
          for (const x of [batch.inputIds, batch.attentionMask, batch.pixelValues]) x.dispose();
        }
      });
    }
  });
}
