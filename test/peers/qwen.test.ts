// Qwen2-VL and Qwen2.5-VL against transformers 5.18 and PEFT 0.21
// (test/peers/py/qwen_peers.py), both directions:
//   transformers -> ours: per family, a random tiny checkpoint built and saved
//     by transformers (save_pretrained; our tiny preset's config and
//     tokenizer; Qwen2-VL untied, Qwen2.5-VL tied). Ours loads it strictly and,
//     on transformers' processed inputs, gives float32 logits within 1e-5
//     (max abs over real positions) of transformers' eager forward (its own
//     SDPA-vs-eager gap is logged for scale) and the same 16 greedy ids as its
//     generate() (no EOS stop), for text only, one image, two images of
//     different sizes and a left-padded batch of two; our processor (chat
//     template from the folder, image processor, <|image_pad|> expansion) gives
//     identical prompt text, input ids, attention mask, pixel_values (max
//     difference 0) and image_grid_thw on the same PNG files; tying edge
//     cases (a config that ties over a stored, different lm_head; text_config's
//     flag alone, which Qwen's config forwards) decided as transformers does.
//   ours -> transformers / PEFT: folders written by our init-model (both
//     families) and by a 2-step SFT with LoRA (each family, merged) load with
//     AutoModelForImageTextToText.from_pretrained with no missing / unexpected
//     / mismatched keys and no loading message about keys, with logits within
//     1e-5 of ours on a left-padded batch with images; the LoRA adapter folder
//     loads with PeftModel.from_pretrained (every stored tensor taken, bit for
//     bit) and base + adapter gives our merged folder's logits within 1e-5.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { generate } from "../../src/generate/index.js";
import type { ChatMessage } from "../../src/io/chat_template.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { HFTokenizer } from "../../src/io/tokenizer.js";
import { loadPretrained } from "../../src/models/index.js";
import { QWEN_VISION_TOKENS, type QwenVLConfig, QwenVLProcessor } from "../../src/models/qwen2_vl/index.js";
import { type Tensor, tidy } from "../../src/torch/index.js";
import { splitImages } from "../models/qwen2_vl/fixtures.js";
import { peerSkip, runPython, scratch } from "./helpers/bridge.js";
import { vlmGrpo } from "./helpers/cli.js";
import { assertPeftAdapterLoaded, compareFolderLogits, KEY_MESSAGE, type PeftAdapterCheck, TINY_SFT, writeRunConfig } from "./helpers/folders.js";

const LOGITS_ATOL = 1e-5;
const NEW_TOKENS = 16;
const FAMILIES = ["qwen2_vl", "qwen2_5_vl"] as const;
type Family = (typeof FAMILIES)[number];
const SCENARIOS = ["text", "one_image", "two_images", "padded_batch"] as const;
/** The prompts of qwen_peers.py's SCENARIOS: [text, images] per sample. */
const SAMPLES: Record<(typeof SCENARIOS)[number], [string, number][]> = {
  text: [["Describe nothing at all, please.", 0]],
  one_image: [["What is in the picture?", 1]],
  two_images: [["Compare these two pictures.", 2]],
  padded_batch: [
    ["Short?", 1],
    ["A much longer question about these pictures, with many more words.", 2],
  ],
};

interface HfScenario {
  file: string;
  texts: string[];
  images: string[][];
  sdpa_vs_eager_max_abs: number;
  logits_max_abs: number;
}
interface HfFamily {
  dir: string;
  class: string;
  pad_token_id: number;
  files: string[];
  tied: boolean;
  loading_info: Record<string, string[]>;
  load_messages: string[];
  scenarios: Record<string, HfScenario>;
}
interface ModelCheck {
  class: string;
  loading_info: Record<string, string[]>;
  load_messages: string[];
  tied: boolean;
  file: string;
}
type AdapterCheck = PeftAdapterCheck;
interface TieVariant {
  dir: string;
  family: Family;
  file: string;
  load_messages: string[];
  loading_info: Record<string, string[]>;
  tied: boolean;
}
interface PeerResponse {
  hf: Record<Family, HfFamily>;
  tie_variants: Record<string, TieVariant>;
  models: Record<string, ModelCheck>;
  adapters: Record<string, AdapterCheck>;
}

const CLASSES: Record<Family, string> = { qwen2_vl: "Qwen2VLForConditionalGeneration", qwen2_5_vl: "Qwen2_5_VLForConditionalGeneration" };
const skip = peerSkip();
const work = scratch("vlm-peers-qwen-");
after(work.cleanup);
const tokDirs = {} as Record<Family, string>;
const oursDirs: Record<string, string> = {};
let peer: PeerResponse;

before(() => {
  if (skip) return;
  const w = (n: string) => path.join(work.dir, n);
  FAMILIES.forEach((f, i) => {
    tokDirs[f] = w(`init-${f}`);
    vlmGrpo(["init-model", "--arch", f, "--preset", "tiny", "--out", tokDirs[f], "--seed", String(i + 1), "--init-std", "0.1"]);
  });
  vlmGrpo(["data", "synth", "--out", w("data"), "--n", "24", "--image-size", "32", "--seed", "1"]);
  for (const f of FAMILIES) {
    vlmGrpo(["sft", "--config", writeRunConfig(work.dir, `sft-lora-${f}`, tokDirs[f], path.join(w("data"), "manifest.jsonl"), true, { sft: TINY_SFT })]);
    oursDirs[`init-model ${f}`] = tokDirs[f];
    oursDirs[`sft-lora-merged ${f}`] = w(`sft-lora-${f}/final`);
  }
  peer = runPython<PeerResponse>(
    "qwen_peers.py",
    {
      tokenizer_dirs: tokDirs,
      models: Object.entries(oursDirs).map(([name, dir]) => ({ name, dir })),
      adapters: FAMILIES.map((f) => ({ name: `sft-lora-adapter ${f}`, dir: w(`sft-lora-${f}/final-adapter`) })),
      out: w("py"),
    },
    { dir: work.dir },
  ).response;
});

/** Ours: greedy ids on a scenario file's inputs, each prompt with its own images (its <|vision_start|> count). */
async function oursGreedy(h: HfFamily, file: string): Promise<{ ours: number[][]; theirs: number[][] }> {
  const { model } = await loadPretrained(h.dir, { dtype: "float32" });
  const t = loadSafetensors(file);
  try {
    const inputIds = t.get("input_ids")!;
    const pixels = t.get("pixel_values");
    const grid = t.get("image_grid_thw");
    const start = (model.config as QwenVLConfig).visionStartTokenId;
    const perPrompt = (inputIds.toList() as number[][]).map((row) => row.filter((id) => id === start).length);
    const out = tidy(() =>
      generate(model, { inputIds, attentionMask: t.get("attention_mask")!, images: pixels && grid ? splitImages(pixels, grid, perPrompt) : undefined }, {
        maxNewTokens: NEW_TOKENS,
        doSample: false,
        eosTokenIds: [],
        padTokenId: h.pad_token_id,
      }),
    );
    return { ours: out.completions.map((c) => c.tokenIds), theirs: t.get("greedy_ids")!.toList() as number[][] };
  } finally {
    for (const x of t.values()) x.dispose();
    model.dispose();
  }
}

for (const family of FAMILIES) {
  describe(`${family}: a checkpoint saved by transformers, in ours`, { skip }, () => {
    test("transformers loaded its own save without key complaints; ours loads it strictly, tied exactly when transformers ties", async () => {
      const h = peer.hf[family];
      assert.equal(h.class, CLASSES[family]);
      for (const k of ["missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"]) assert.deepEqual(h.loading_info[k], [], `${k}`);
      assert.equal(h.tied, family === "qwen2_5_vl", "the script ties Qwen2.5-VL only");
      assert.equal(h.files.includes("model.safetensors"), true);
      const warnings: string[] = [];
      const { model } = await loadPretrained(h.dir, { dtype: "float32", onWarning: (m) => warnings.push(m) });
      try {
        const m = model as unknown as { lm_head: { weight: Tensor }; model: { language_model: { embed_tokens: { weight: Tensor } } } };
        assert.equal(m.lm_head.weight === m.model.language_model.embed_tokens.weight, h.tied);
        assert.deepEqual(warnings, []);
      } finally {
        model.dispose();
      }
    });

    for (const sc of SCENARIOS) {
      test(`${sc}: float32 logits within ${LOGITS_ATOL} of transformers' eager forward`, async (t) => {
        const s = peer.hf[family].scenarios[sc];
        const d = await compareFolderLogits(peer.hf[family].dir, s.file);
        t.diagnostic(`max |ours - eager| ${d.toExponential(2)}; transformers' own sdpa-vs-eager ${s.sdpa_vs_eager_max_abs.toExponential(2)}; max |logit| ${s.logits_max_abs.toFixed(2)}`);
        assert.ok(d <= LOGITS_ATOL, `max |ours - transformers eager| = ${d} > ${LOGITS_ATOL}`);
      });

      test(`${sc}: the same ${NEW_TOKENS} greedy ids as transformers' generate()`, async (t) => {
        const { ours, theirs } = await oursGreedy(peer.hf[family], peer.hf[family].scenarios[sc].file);
        assert.equal(theirs[0].length, NEW_TOKENS);
        const distinct = new Set(theirs.flat()).size;
        t.diagnostic(`${distinct} distinct ids among transformers' ${theirs.flat().length}`);
        assert.ok(distinct >= 3, "a degenerate continuation (one repeated token) would test little");
        assert.deepEqual(ours, theirs);
      });

      test(`${sc}: our processor gives transformers' prompt text, ids, mask, pixel_values and image_grid_thw`, async () => {
        const s = peer.hf[family].scenarios[sc];
        const tok = await HFTokenizer.fromDir(tokDirs[family]);
        const proc = QwenVLProcessor.fromDir(tokDirs[family], tok);
        const texts = SAMPLES[sc].map(([text, n]) => {
          const content = [...Array.from({ length: n }, () => ({ type: "image" as const })), { type: "text" as const, text }];
          return tok.applyChatTemplate([{ role: "user", content }] as ChatMessage[], { addGenerationPrompt: true });
        });
        assert.deepEqual(texts, s.texts, "chat template text");
        assert.ok(texts.every((x, i) => x.split(QWEN_VISION_TOKENS.imagePad).length - 1 === SAMPLES[sc][i][1]));
        const batch = await proc.prepare(texts.map((text, i) => ({ text, images: s.images[i] })));
        const theirs = loadSafetensors(s.file);
        try {
          assert.deepEqual(batch.inputIds.toList(), theirs.get("input_ids")!.toList(), "input_ids");
          assert.deepEqual(batch.attentionMask.toList(), theirs.get("attention_mask")!.toList(), "attention_mask");
          const pv = theirs.get("pixel_values");
          if (!pv) {
            assert.equal(batch.pixelValues.size(0), 0);
            return;
          }
          assert.deepEqual(batch.imageGridThw.toList(), theirs.get("image_grid_thw")!.toList(), "image_grid_thw");
          assert.deepEqual(batch.pixelValues.shape, pv.shape, "pixel_values shape");
          const d = tidy(() => batch.pixelValues.sub(pv).abs().max().item() as number);
          assert.equal(d, 0, `pixel_values differ by up to ${d}`);
        } finally {
          for (const x of theirs.values()) x.dispose();
          for (const x of [batch.inputIds, batch.attentionMask, batch.pixelValues, batch.imageGridThw]) x.dispose();
        }
      });
    }
  });
}

describe("lm_head tying as transformers 5.x decides it, Qwen checkpoints", { skip }, () => {
  for (const [name, wantTied] of [
    ["lm_head-stored-differs", false],
    ["text-config-tie", true],
  ] as const) {
    test(`${name}: ours ties exactly when transformers does, warns when it warns, and gives its logits within ${LOGITS_ATOL}`, async (t) => {
      const v = peer.tie_variants[name];
      assert.equal(v.tied, wantTied, "transformers' decision (the case is what its name says)");
      for (const k of ["missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"]) assert.deepEqual(v.loading_info[k], [], `${k}`);
      const theirsWarn = v.load_messages.some((x) => /NOT tie/.test(x));
      assert.equal(theirsWarn, !wantTied, `transformers' messages: ${v.load_messages.join(" | ")}`);
      const warnings: string[] = [];
      const { model } = await loadPretrained(v.dir, { dtype: "float32", onWarning: (m) => warnings.push(m) });
      try {
        const m = model as unknown as { lm_head: { weight: Tensor }; model: { language_model: { embed_tokens: { weight: Tensor } } } };
        assert.equal(m.lm_head.weight === m.model.language_model.embed_tokens.weight, v.tied, "ours tied");
        assert.equal(warnings.some((x) => /loading them untied/.test(x)), theirsWarn, `our warnings: ${warnings.join(" | ")}`);
      } finally {
        model.dispose();
      }
      const d = await compareFolderLogits(v.dir, v.file);
      t.diagnostic(`max |ours - transformers| ${d.toExponential(2)}`);
      assert.ok(d <= LOGITS_ATOL, `max |ours - transformers eager| = ${d} > ${LOGITS_ATOL}`);
    });
  }
});

describe("our Qwen folders in transformers and PEFT", { skip }, () => {
  for (const name of FAMILIES.flatMap((f) => [`init-model ${f}`, `sft-lora-merged ${f}`])) {
    test(`${name}: from_pretrained with no key complaints, logits within ${LOGITS_ATOL}`, async (t) => {
      const m = peer.models[name];
      assert.equal(m.class, CLASSES[name.endsWith("qwen2_vl") ? "qwen2_vl" : "qwen2_5_vl"]);
      for (const k of ["missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"]) assert.deepEqual(m.loading_info[k], [], `${name}: ${k}`);
      assert.deepEqual(m.load_messages.filter((x) => KEY_MESSAGE.test(x)), [], `${name}: loading messages`);
      const d = await compareFolderLogits(oursDirs[name], m.file);
      t.diagnostic(`max |ours - transformers| ${d.toExponential(2)}`);
      assert.ok(d <= LOGITS_ATOL, `max |ours - transformers eager| = ${d} > ${LOGITS_ATOL}`);
    });
  }

  for (const family of FAMILIES) {
    test(`sft-lora-adapter ${family}: PeftModel.from_pretrained holds every stored tensor; base + adapter logits = our merged folder within ${LOGITS_ATOL}`, async (t) => {
      const a = peer.adapters[`sft-lora-adapter ${family}`];
      assertPeftAdapterLoaded(a);
      const d = await compareFolderLogits(oursDirs[`sft-lora-merged ${family}`], a.file);
      t.diagnostic(`max |ours merged - PEFT| ${d.toExponential(2)}`);
      assert.ok(d <= LOGITS_ATOL, `max |ours merged - PEFT base+adapter| = ${d} > ${LOGITS_ATOL}`);
    });
  }
});
