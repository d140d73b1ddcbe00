// Our Qwen2-VL / Qwen2.5-VL against the real transformers 5.18 on random tiny
// checkpoints saved by save_pretrained (scripts/fixtures/make_qwen_fixtures.py):
// float32 logits within 1e-5 at every real position stored (text only, one
// image, two images of different sizes, a left-padded batch), image features
// within 1e-5, position ids and rope deltas identical, greedy ids identical.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { loadQwenPretrained, type QwenFamily, type QwenVLForConditionalGeneration } from "../../../src/models/qwen2_vl/index.js";
import { noGrad, type Tensor, tensor, tidy } from "../../../src/torch/index.js";
import { FAMILIES, familyTensors, MODEL_DIRS, type ModelCase, pixelValuesOf, processorTensors, reference } from "./fixtures.js";

const TOL = 1e-5;

/** Max |ours - expected| over the real positions of the stored last-k window. */
function maxDiff(ours: Tensor, expected: Tensor, mask: number[][], keep: number): number {
  assert.deepEqual(ours.shape, expected.shape);
  const [b, k, v] = ours.shape;
  assert.equal(k, keep);
  const a = ours.toTypedArray() as Float32Array;
  const e = expected.toTypedArray() as Float32Array;
  const t = mask[0].length;
  let worst = 0;
  let checked = 0;
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < k; j++) {
      if (!mask[i][t - k + j]) continue;
      for (let x = 0; x < v; x++) {
        const o = (i * k + j) * v + x;
        worst = Math.max(worst, Math.abs(a[o] - e[o]));
        checked++;
      }
    }
  }
  assert.ok(checked > 0, "some positions were compared");
  return worst;
}

function inputsOf(c: ModelCase, proc: Map<string, Tensor>) {
  const inputIds = tensor(c.input_ids.map((r) => r.map(BigInt)));
  const attentionMask = tensor(c.attention_mask.map((r) => r.map(BigInt)));
  const pixelValues = c.images ? pixelValuesOf(c.images, proc) : undefined;
  const imageGridThw = c.image_grid_thw ? tensor(c.image_grid_thw.map((r) => r.map(BigInt))) : undefined;
  return { inputIds, attentionMask, pixelValues, imageGridThw };
}

for (const family of FAMILIES) {
  describe(`${family}: fidelity to transformers ${reference().versions.transformers}`, () => {
    let model: QwenVLForConditionalGeneration;
    let expected: Map<string, Tensor>;
    let proc: Map<string, Tensor>;
    const cases = reference().families[family].cases;
    const measured: Record<string, number> = {};

    before(async () => {
      ({ model } = await loadQwenPretrained(MODEL_DIRS[family]));
      model.eval();
      expected = familyTensors(family);
      proc = processorTensors();
    });
    after(() => {
      model.dispose();
      for (const t of [...expected.values(), ...proc.values()]) t.dispose();
      console.log(`# ${family}: max |logit diff| per case ${JSON.stringify(measured)}`);
    });

    test("position ids, rope deltas and decode positions equal get_rope_index's", () => {
      for (const [name, c] of Object.entries(cases)) {
        tidy(() => {
          const { inputIds, attentionMask } = inputsOf(c, proc);
          const r = model.ropeIndex(inputIds, attentionMask, c.image_grid_thw ?? null);
          assert.deepEqual(r.positionIds.toList(), c.position_ids, `${name}: position ids`);
          assert.deepEqual(r.ropeDeltas.toList(), c.rope_deltas, `${name}: rope deltas`);
          // generate() continues each row at its last position + 1, + 2, + 3.
          let mask = attentionMask;
          const steps: number[][][][] = [];
          for (let s = 0; s < 3; s++) {
            mask = tensor((mask.toList() as number[][]).map((row) => [...row.map(BigInt), 1n]));
            steps.push(model.decodePositionIds(mask, r.ropeDeltas).toList() as number[][][]);
          }
          const got = [0, 1, 2].map((row) => c.decode_position_ids[row].map((_, b) => steps.map((st) => st[row][b][0])));
          assert.deepEqual(got, c.decode_position_ids, `${name}: decode positions`);
        });
      }
    });

    for (const name of Object.keys(cases)) {
      test(`logits within ${TOL}: ${name}`, () => {
        const c = cases[name];
        const diff = noGrad(() =>
          tidy(() => {
            const inp = inputsOf(c, proc);
            const { logits } = model.forward(inp);
            const keep = c.logits_positions;
            return maxDiff(logits.narrow(1, logits.size(1) - keep, keep), expected.get(`${name}.logits`)!, c.attention_mask, keep);
          }),
        );
        measured[name] = diff;
        assert.ok(diff <= TOL, `${family} ${name}: max |logit diff| ${diff.toExponential(3)} > ${TOL}`);
      });
    }

    test(`image features within ${TOL}`, () => {
      for (const [name, c] of Object.entries(cases)) {
        if (!c.images) continue;
        const diff = noGrad(() =>
          tidy(() => {
            const feats = model.encodeImages(pixelValuesOf(c.images!, proc), c.image_grid_thw!);
            const e = expected.get(`${name}.image_features`)!;
            assert.deepEqual(feats.shape, e.shape, `${name}: feature shape`);
            return feats.sub(e).abs().max().item() as number;
          }),
        );
        measured[`${name}.image_features`] = diff;
        assert.ok(diff <= TOL, `${family} ${name}: image features max diff ${diff}`);
      }
    });
  });
}
