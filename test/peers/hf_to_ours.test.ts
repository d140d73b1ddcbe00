// transformers -> ours for Idefics3 (SmolVLM): tiny random checkpoints built
// and saved by transformers 5.x itself (save_pretrained; test/peers/py/
// idefics3_hf_models.py), in several configs: untied and tied embeddings, bf16
// weights, 4 shards, image splitting, llama3 RoPE scaling, a partial vision
// patch (image_size 36, patch 8: floored to 4 patches), and lm_head tying as
// transformers 5.x decides it (text_config's flag alone does not tie; a stored
// lm_head that differs unties, with a warning). Ours loads each strictly and, on the same
// input tensors (made by transformers' processor), gives:
//   - float32 logits within 1e-5 (max abs) of transformers' eager forward, at
//     every real (unpadded) position; the eager-vs-SDPA gap of transformers
//     itself is logged for scale (measured 1.4e-6 .. 3e-6);
//   - the same 16 greedy token ids as transformers' generate() (no EOS stop).
// Scenarios: text only, one image, two images, a left-padded batch of two, and
// one tile with padded rows (pixel_attention_mask 0).
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { generate } from "../../src/generate/index.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { type Idefics3ForConditionalGeneration, type ImageInputs, loadPretrained } from "../../src/models/index.js";
import { arange, type Tensor, tidy } from "../../src/torch/index.js";
import { peerSkip, runPython, scratch } from "./helpers/bridge.js";
import { vlmGrpo } from "./helpers/cli.js";
import { maxAbsAtRealPositions } from "./helpers/folders.js";

const LOGITS_ATOL = 1e-5;
const NEW_TOKENS = 16;

interface Scenario {
  file: string;
  batch: number;
  images: number;
  pixel_mask_all_ones: boolean;
  sdpa_vs_eager_max_abs: number;
  logits_max_abs: number;
}
interface Variant {
  dir: string;
  dtype: string;
  files: string[];
  tied: boolean;
  loading_info: Record<string, unknown>;
  load_messages: string[];
  scenarios: Record<string, Scenario>;
}

const skip = peerSkip();
const work = scratch("vlm-peers-hf-");
after(work.cleanup);
let variants: Record<string, Variant> = {};

before(() => {
  if (skip) return;
  const tok = path.join(work.dir, "tiny");
  vlmGrpo(["init-model", "--arch", "idefics3", "--preset", "tiny", "--out", tok, "--seed", "1"]);
  variants = runPython<{ variants: Record<string, Variant> }>("idefics3_hf_models.py", { tokenizer_dir: tok, out: path.join(work.dir, "hf") }, { dir: work.dir }).response.variants;
});

/** Our forward on a scenario file's inputs (positions: the file's, or our default when `defaultPositions`). */
async function oursLogits(dir: string, file: string, positions: "file" | "default" | "arange" = "file") {
  const { model } = await loadPretrained(dir, { dtype: "float32" });
  const t = loadSafetensors(file);
  try {
    return tidy(() => {
      const inputIds = t.get("input_ids")!;
      const [b, n] = inputIds.shape;
      const positionIds = positions === "file" ? t.get("position_ids")! : positions === "arange" ? arange(n, { dtype: "int64" }).view(1, n).expand(b, n) : undefined;
      const { logits } = model.forward({ inputIds, attentionMask: t.get("attention_mask")!, pixelValues: t.get("pixel_values"), pixelAttentionMask: t.get("pixel_attention_mask"), positionIds });
      return {
        eager: maxAbsAtRealPositions(logits, t.get("logits_eager")!, t.get("attention_mask")!),
        eagerDefaultPos: maxAbsAtRealPositions(logits, t.get("logits_eager_default_pos")!, t.get("attention_mask")!),
      };
    });
  } finally {
    for (const x of t.values()) x.dispose();
    model.dispose();
  }
}

/**
 * The file's real images [N, 3, H, W] (in row order, transformers' padding
 * images dropped) as our per-prompt image inputs: row b takes the next n_b,
 * n_b = its <image> tokens / tokens per image, with their pixel masks.
 */
function imagesPerRow(model: Idefics3ForConditionalGeneration, inputIds: Tensor, pixels?: Tensor, mask?: Tensor): (ImageInputs | null)[] | undefined {
  if (!pixels) return undefined;
  const perImage = model.config.imageSeqLen;
  const counts = (inputIds.eq(model.imageTokenId).sum(1).toFlatArray() as number[]).map((n) => n / perImage);
  let start = 0;
  return counts.map((n) => {
    if (n === 0) return null;
    const img: ImageInputs = { pixelValues: pixels.narrow(0, start, n), ...(mask ? { pixelAttentionMask: mask.narrow(0, start, n) } : {}) };
    start += n;
    return img;
  });
}

async function oursGreedy(dir: string, file: string): Promise<{ ours: number[][]; theirs: number[][] }> {
  const { model, config } = await loadPretrained(dir, { dtype: "float32" });
  const t = loadSafetensors(file);
  try {
    const inputIds = t.get("input_ids")!;
    const out = generate(model, { inputIds, attentionMask: t.get("attention_mask")!, images: imagesPerRow(model as Idefics3ForConditionalGeneration, inputIds, t.get("pixel_values"), t.get("pixel_attention_mask")) }, {
      maxNewTokens: NEW_TOKENS,
      doSample: false,
      eosTokenIds: [],
      padTokenId: (config.raw.pad_token_id as number) ?? 0,
    });
    return { ours: out.completions.map((c) => c.tokenIds), theirs: t.get("greedy_ids")!.toList() as number[][] };
  } finally {
    for (const x of t.values()) x.dispose();
    model.dispose();
  }
}

const VARIANTS = ["fp32-untied", "fp32-tied", "bf16", "sharded", "split", "llama3-rope", "partial-patch", "lm_head-text-config-tie", "lm_head-stored-differs"];
const SCENARIOS = ["text", "one_image", "two_images", "padded_batch", "padded_tile"];

describe("checkpoints saved by transformers load in ours with transformers' logits and greedy ids", { skip }, () => {
  test("transformers itself loaded every variant without missing / unexpected / mismatched keys", () => {
    assert.deepEqual(Object.keys(variants).sort(), [...VARIANTS].sort());
    for (const [name, v] of Object.entries(variants)) {
      for (const k of ["missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"]) assert.deepEqual(v.loading_info[k], [], `${name}: ${k}`);
    }
    assert.equal(variants["fp32-tied"].tied, true);
    assert.equal(variants["fp32-untied"].tied, false);
    assert.equal(variants["bf16"].dtype, "bfloat16");
    assert.ok(variants["sharded"].files.includes("model.safetensors.index.json"), "sharded: index written");
    assert.ok(variants["sharded"].files.filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f)).length >= 2, "sharded: several shards");
    assert.ok(variants["split"].scenarios["one_image"].images > 1, "split: an image became several tiles");
    assert.ok(variants["lm_head-stored-differs"].load_messages.some((m) => /NOT tie/.test(m)), "transformers warns that it unties");
  });

  for (const name of VARIANTS) {
    describe(name, () => {
      test("ours loads it strictly (float32; 'auto' keeps the stored dtype), tied exactly when transformers ties, warning when it warns", async () => {
        const v = variants[name];
        const warnings: string[] = [];
        const { model } = await loadPretrained(v.dir, { dtype: "float32", onWarning: (m) => warnings.push(m) });
        const m = model as unknown as { lm_head: { weight: Tensor }; model: { text_model: { embed_tokens: { weight: Tensor } } } };
        const tied = m.lm_head.weight === m.model.text_model.embed_tokens.weight;
        model.dispose();
        assert.equal(tied, v.tied, "lm_head tied to the embeddings");
        const theirsWarn = v.load_messages.some((x) => /NOT tie/.test(x));
        assert.equal(warnings.some((x) => /loading them untied/.test(x)), theirsWarn, `our warnings: ${warnings.join(" | ")}`);
        const auto = await loadPretrained(v.dir, { dtype: "auto" });
        try {
          const dtype = (auto.model as unknown as { lm_head: { weight: Tensor } }).lm_head.weight.dtype;
          assert.equal(dtype, v.dtype === "bfloat16" ? "bfloat16" : "float32");
        } finally {
          auto.model.dispose();
        }
      });

      for (const sc of SCENARIOS) {
        test(`${sc}: float32 logits within ${LOGITS_ATOL} of transformers' eager forward`, async (t) => {
          const s = variants[name].scenarios[sc];
          const d = await oursLogits(variants[name].dir, s.file);
          t.diagnostic(`max |ours - eager| ${d.eager.toExponential(2)}; transformers' own sdpa-vs-eager ${s.sdpa_vs_eager_max_abs.toExponential(2)}; max |logit| ${s.logits_max_abs.toFixed(2)}`);
          assert.ok(d.eager <= LOGITS_ATOL, `max |ours - transformers eager| = ${d.eager} > ${LOGITS_ATOL}`);
        });

        test(`${sc}: the same ${NEW_TOKENS} greedy ids as transformers' generate()`, async () => {
          const s = variants[name].scenarios[sc];
          const { ours, theirs } = await oursGreedy(variants[name].dir, s.file);
          assert.deepEqual(ours, theirs);
        });
      }
    });
  }

  // Ours defaults to generate()'s position ids (mask cumsum) for a left-padded
  // batch; transformers 5.x's forward without position_ids uses 0..T-1 (what
  // TRL's log-prob pass gets). RoPE scores depend only on relative positions
  // and padded keys are masked, so the real positions' logits agree either way.
  test("left-padded batch: the default position ids of ours (mask cumsum) and of transformers' forward (arange) give the same real-position logits", async (t) => {
    const v = variants["fp32-untied"];
    const file = v.scenarios["padded_batch"].file;
    const byDefault = await oursLogits(v.dir, file, "default");
    const arangePos = await oursLogits(v.dir, file, "arange");
    t.diagnostic(`ours default vs HF(cumsum positions) ${byDefault.eager.toExponential(2)}, vs HF default ${byDefault.eagerDefaultPos.toExponential(2)}; ours arange vs HF default ${arangePos.eagerDefaultPos.toExponential(2)}`);
    assert.ok(byDefault.eager <= LOGITS_ATOL, "ours (no positionIds) = transformers with generate()'s position ids");
    assert.ok(byDefault.eagerDefaultPos <= LOGITS_ATOL, "ours (no positionIds) = transformers' forward without position_ids");
    assert.ok(arangePos.eagerDefaultPos <= LOGITS_ATOL, "ours with arange positionIds = transformers' forward without position_ids");
  });
});
