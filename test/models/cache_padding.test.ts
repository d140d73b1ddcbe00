// Incremental decoding with the KV cache gives the logits of one full forward
// pass at every step (float32, 1e-4), with and without images and left
// padding; a left-padded batch gives each example's logits alone; cache
// repeat/select match recomputation.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { type Idefics3ForConditionalGeneration, type LlamaForCausalLM } from "../../src/models/index.js";
import { KVCache } from "../../src/nn/index.js";
import { arange, cat, liveTensors, noGrad, ones, randn, type Tensor, tensor, tidy } from "../../src/torch/index.js";
import { assertClose } from "../helpers/close.js";
import { IMAGE_TOKEN, seededModel, testConfig } from "./helpers.js";

const TOL = { atol: 1e-4, rtol: 1e-4 };
const ids = (rows: number[][]) => tensor(rows, { dtype: "int64" });
const img = (n: number) => Array<number>(n).fill(IMAGE_TOKEN);

const llama = seededModel(testConfig("llama"), 11) as LlamaForCausalLM;
const vlm = seededModel(testConfig("idefics3"), 12) as Idefics3ForConditionalGeneration;
const L = vlm.config.imageSeqLen; // 4

describe("KV cache: incremental == full forward", () => {
  test("Llama: prefill 3 tokens, then one at a time", () =>
    noGrad(() =>
      tidy(() => {
        const seq = [1, 7, 9, 23, 5, 60, 61, 3, 44];
        const full = llama.forward({ inputIds: ids([seq]) }).logits; // (1, 9, V)
        const cache = llama.newCache();
        try {
          const pre = llama.forward({ inputIds: ids([seq.slice(0, 3)]), cache }).logits;
          assertClose(pre, full.narrow(1, 0, 3), TOL, "prefill");
          for (let t = 3; t < seq.length; t++) {
            const step = llama.forward({ inputIds: ids([[seq[t]]]), cache }).logits;
            assert.equal(cache.length, t + 1);
            assertClose(step, full.narrow(1, t, 1), TOL, `step ${t}`);
          }
        } finally {
          cache.dispose();
        }
      }),
    ));

  test("Llama: chunks of several tokens after a cached prefix (causal mask offset by the past), with padding", () =>
    noGrad(() =>
      tidy(() => {
        const rows = [
          [1, 7, 9, 23, 5, 60, 61, 3, 44, 45],
          [0, 0, 1, 8, 24, 6, 62, 4, 46, 47],
        ];
        const mask = [Array(10).fill(1), [0, 0, ...Array(8).fill(1)]];
        for (const withMask of [false, true]) {
          const m = withMask ? mask : undefined;
          const full = llama.forward({ inputIds: ids(rows), attentionMask: m && ids(m) }).logits;
          const cache = llama.newCache();
          try {
            let at = 0;
            for (const n of [4, 3, 1, 2]) {
              const out = llama.forward({
                inputIds: ids(rows.map((r) => r.slice(at, at + n))),
                attentionMask: m && ids(m.map((r) => r.slice(0, at + n))),
                cache,
              }).logits;
              const from = Math.max(at, withMask ? 2 : 0);
              if (at + n > from) assertClose(out.narrow(1, from - at, at + n - from), full.narrow(1, from, at + n - from), TOL, `chunk at ${at} (mask ${withMask})`);
              at += n;
            }
          } finally {
            cache.dispose();
          }
        }
      }),
    ));

  test("Idefics3: prompt with an image (pixels in the prefill only), then decoding", () =>
    noGrad(() =>
      tidy(() => {
        const seq = [1, 10, 91, ...img(L), 91, 12, 13, 40, 41, 42, 43];
        const pixels = randn([1, 3, 32, 32]);
        const full = vlm.forward({ inputIds: ids([seq]), pixelValues: pixels }).logits;
        const cache = vlm.newCache();
        const feats = vlm.encodeImages(pixels);
        assert.deepEqual(feats.shape, [1, L, 64]);
        try {
          const p = 9;
          const pre = vlm.forward({ inputIds: ids([seq.slice(0, p)]), imageFeatures: feats, cache, logitsToKeep: 1 }).logits;
          assert.deepEqual(pre.shape, [1, 1, 96]);
          assertClose(pre, full.narrow(1, p - 1, 1), TOL, "prefill last");
          for (let t = p; t < seq.length; t++) {
            const step = vlm.forward({ inputIds: ids([[seq[t]]]), cache }).logits;
            assertClose(step, full.narrow(1, t, 1), TOL, `step ${t}`);
          }
        } finally {
          cache.dispose();
        }
      }),
    ));

  test("left-padded batch: decoding with a growing mask and generate-style positions", () =>
    noGrad(() =>
      tidy(() => {
        const rows = [
          [1, 10, 91, ...img(L), 91, 12, 13, 50, 51, 52],
          [0, 0, 1, 91, ...img(L), 91, 14, 53, 54, 55],
        ];
        const mask = [Array(13).fill(1), [0, 0, ...Array(11).fill(1)]];
        const pixels = randn([2, 3, 32, 32]);
        const full = vlm.forward({ inputIds: ids(rows), attentionMask: ids(mask), pixelValues: pixels }).logits;
        const cache = vlm.newCache();
        try {
          const p = 10;
          const pre = vlm.forward({
            inputIds: ids(rows.map((r) => r.slice(0, p))),
            attentionMask: ids(mask.map((r) => r.slice(0, p))),
            pixelValues: pixels,
            cache,
          }).logits;
          // real positions only
          assertClose(pre.narrow(1, 3, p - 3), full.narrow(1, 3, p - 3), TOL, "prefill");
          for (let t = p; t < 13; t++) {
            const step = vlm.forward({ inputIds: ids(rows.map((r) => [r[t]])), attentionMask: ids(mask.map((r) => r.slice(0, t + 1))), cache }).logits;
            assertClose(step, full.narrow(1, t, 1), TOL, `step ${t}`);
          }
        } finally {
          cache.dispose();
        }
      }),
    ));

  test("a cache repeated per row (repeatBatch) or re-selected decodes like recomputation", () =>
    noGrad(() =>
      tidy(() => {
        const prompt = [
          [1, 7, 9, 11],
          [0, 1, 8, 12],
        ];
        const mask = [
          [1, 1, 1, 1],
          [0, 1, 1, 1],
        ];
        const cache = llama.newCache({ reserve: 4 }); // spare room survives repeatBatch / select
        llama.forward({ inputIds: ids(prompt), attentionMask: ids(mask), cache });
        const rep = cache.repeatBatch(3);
        const sel = rep.select([5, 0]);
        try {
          assert.equal(rep.batchSize, 6);
          assert.equal(rep.length, 4);
          const nextTok = [20, 21, 22, 23, 24, 25];
          const m6 = [0, 0, 0, 1, 1, 1].map((r) => [...mask[r], 1]);
          const step = llama.forward({ inputIds: ids(nextTok.map((x) => [x])), attentionMask: ids(m6), cache: rep }).logits;
          const fullIds = [0, 0, 0, 1, 1, 1].map((r, i) => [...prompt[r], nextTok[i]]);
          const full = llama.forward({ inputIds: ids(fullIds), attentionMask: ids(m6) }).logits.narrow(1, 4, 1);
          assertClose(step, full, TOL, "repeatBatch");
          const s2 = llama.forward({ inputIds: ids([[30], [31]]), attentionMask: ids([m6[5], m6[0]]), cache: sel }).logits;
          const f2 = llama.forward({ inputIds: ids([[...prompt[1], 30], [...prompt[0], 31]]), attentionMask: ids([m6[5], m6[0]]) }).logits.narrow(1, 4, 1);
          assertClose(s2, f2, TOL, "select");
          // the source cache is unchanged by repeat / select
          assert.equal(cache.batchSize, 2);
          assert.equal(cache.length, 4);
        } finally {
          cache.dispose();
          rep.dispose();
          sel.dispose();
        }
      }),
    ));
});

describe("bfloat16 compute", () => {
  test("Idefics3 in bfloat16: float32 logits close to the float32 model's; cached decoding agrees with a full pass", () =>
    noGrad(() =>
      tidy(() => {
        const bf = seededModel(testConfig("idefics3"), 12, "bfloat16") as Idefics3ForConditionalGeneration;
        try {
          const seq = [1, 10, 91, ...img(L), 91, 12, 13, 40, 41];
          const pixels = randn([1, 3, 32, 32]);
          const ref = vlm.forward({ inputIds: ids([seq]), pixelValues: pixels }).logits;
          const full = bf.forward({ inputIds: ids([seq]), pixelValues: pixels }).logits;
          assert.equal(full.dtype, "float32");
          assertClose(full, ref, { atol: 0.05, rtol: 0.05 }, "bf16 vs fp32");
          const cache = bf.newCache();
          try {
            bf.forward({ inputIds: ids([seq.slice(0, 9)]), pixelValues: pixels, cache });
            for (let t = 9; t < seq.length; t++) {
              const step = bf.forward({ inputIds: ids([[seq[t]]]), cache }).logits;
              assertClose(step, full.narrow(1, t, 1), { atol: 0.03, rtol: 0.03 }, `bf16 step ${t}`);
            }
          } finally {
            cache.dispose();
          }
        } finally {
          bf.dispose();
        }
      }),
    ));
});

describe("left padding", () => {
  test("Idefics3: each row of a left-padded batch equals the example alone", () =>
    noGrad(() =>
      tidy(() => {
        const a = [1, 10, 91, ...img(L), 91, 11, ...img(L), 12, 13];
        const b = [1, 20, ...img(L), 21];
        const pad = a.length - b.length;
        const pixels = randn([3, 3, 32, 32]); // a has images 0, 1; b has image 2
        const batch = vlm.forward({
          inputIds: ids([a, [...Array(pad).fill(0), ...b]]),
          attentionMask: ids([Array(a.length).fill(1), [...Array(pad).fill(0), ...Array(b.length).fill(1)]]),
          pixelValues: pixels,
        }).logits;
        const alone = (seq: number[], px: Tensor) => vlm.forward({ inputIds: ids([seq]), pixelValues: px }).logits;
        assertClose(batch.narrow(0, 0, 1), alone(a, pixels.narrow(0, 0, 2)), TOL, "row 0");
        assertClose(batch.narrow(0, 1, 1).narrow(1, pad, b.length), alone(b, pixels.narrow(0, 2, 1)), TOL, "row 1");
      }),
    ));

  test("Llama: explicit positions equal the mask-derived default; all-ones mask equals no mask", () =>
    noGrad(() =>
      tidy(() => {
        const x = ids([[0, 0, 1, 5, 6]]);
        const m = ids([[0, 0, 1, 1, 1]]);
        const a = llama.forward({ inputIds: x, attentionMask: m }).logits;
        const b = llama.forward({ inputIds: x, attentionMask: m, positionIds: ids([[1, 1, 0, 1, 2]]) }).logits;
        assertClose(a, b, { atol: 0, rtol: 0 });
        const c = llama.forward({ inputIds: x }).logits;
        const d = llama.forward({ inputIds: x, attentionMask: ones([1, 5], { dtype: "int64" }) }).logits;
        assertClose(c, d, TOL);
      }),
    ));
});

describe("KVCache unit", () => {
  test("update appends along the sequence, grows, and returns the full history", () =>
    noGrad(() =>
      tidy(() => {
        const c = new KVCache(2);
        const chunks: Tensor[] = [];
        try {
          for (let i = 0; i < 5; i++) {
            const k = arange(0, 2 * 3 * (i + 1) * 4, 1, { dtype: "float32" }).add(100 * i).view(2, 3, i + 1, 4);
            chunks.push(k);
            const { keys, values } = c.update(0, k, k.neg());
            const expected = cat(chunks, 2);
            assertClose(keys, expected, { atol: 0, rtol: 0 });
            assertClose(values, expected.neg(), { atol: 0, rtol: 0 });
          }
          assert.equal(c.layerLength(0), 15);
          assert.equal(c.layerLength(1), 0);
          assert.throws(() => c.update(0, randn([3, 3, 1, 4]), randn([3, 3, 1, 4])), /layer 0 holds \[2, 3, \*, 4\]/);
          assert.throws(() => c.update(2, chunks[0], chunks[0]), /layer 2 out of range/);
        } finally {
          c.dispose();
        }
      }),
    ));

  test("decoding leaves no tensors behind once the cache is disposed", () => {
    const base = liveTensors();
    noGrad(() => {
      const cache = llama.newCache();
      tidy(() => {
        llama.forward({ inputIds: ids([[1, 2, 3]]), cache });
      });
      for (let i = 0; i < 20; i++)
        tidy(() => {
          llama.forward({ inputIds: ids([[4 + i]]), cache });
        });
      assert.equal(cache.length, 23);
      cache.dispose();
    });
    assert.equal(liveTensors(), base);
  });

  test("under autograd the cache concatenates instead of writing in place, and gradients flow", () => {
    const cache = llama.newCache();
    llama.train();
    try {
      tidy(() => {
        llama.forward({ inputIds: ids([[1, 2, 3]]), cache });
        const out = llama.forward({ inputIds: ids([[4]]), cache }).logits;
        out.sum().backward();
      });
      const g = llama.model.layers.at(0).self_attn.k_proj.weight.grad;
      assert.ok(g !== null && Number(g.abs().sum().item()) > 0);
      g?.dispose();
    } finally {
      cache.dispose();
      llama.eval();
      for (const p of llama.parameters()) p.grad = null;
    }
  });
});

describe("image token checks", () => {
  test("the number of <image> tokens must match the features", () =>
    noGrad(() =>
      tidy(() => {
        assert.throws(
          () => vlm.forward({ inputIds: ids([[1, ...img(L - 1), 2]]), pixelValues: randn([1, 3, 32, 32]) }),
          /the batch has 3 <image> tokens \(id 90\) but 1 image\(s\) x 4 features per image = 4 were given/,
        );
        assert.throws(() => vlm.forward({ inputIds: ids([[1, 2]]), pixelValues: randn([1, 3, 32, 32]), imageFeatures: randn([1, 4, 64]) }), /either pixelValues or imageFeatures/);
      }),
    ));
});
