// GRPO math: advantages and the clipped loss against hand-computed values
// and against PyTorch (test/fixtures/rewards/grpo_torch.json, written by
// scripts/fixtures/make_grpo_fixtures.py from TRL's formulas), gradients
// against finite differences, and the per-token helpers.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";

import { F, liveTensors, randn, manualSeed, type Tensor, tensor, tidy, ones } from "../../src/torch/index.js";
import {
  entropyFromLogits,
  groupAdvantages,
  grpoLoss,
  type GrpoLossInput,
  isTruncatedCompletion,
  type LossType,
  maskTruncated,
  selectiveLogProbs,
} from "../../src/train/grpo_math.js";
import { assertClose } from "../helpers/close.js";
import { gradcheck } from "../helpers/gradcheck.js";

// dist/test/train -> repository root (fixtures are not copied by tsc).
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");
interface LossCase {
  name: string;
  input: {
    logProbs: number[][];
    oldLogProbs: number[][] | null;
    refLogProbs: number[][] | null;
    advantages: number[];
    completionMask: number[][];
    lossType: LossType;
    epsilonLow: number;
    epsilonHigh: number;
    beta: number;
    importanceSamplingLevel: "token" | "sequence";
    maxCompletionLength: number | null;
    numItemsInBatch: number | null;
    delta: number | null;
  };
  loss: number;
  grad: number[];
  clipRatioLow: number;
  clipRatioHigh: number;
  clipRatioRegion: number;
  klMean: number | null;
}
const FIX = JSON.parse(fs.readFileSync(path.join(ROOT, "test/fixtures/rewards/grpo_torch.json"), "utf8")) as {
  loss: LossCase[];
  advantages: { rewards: (number | null)[]; groupSize: number; scale: "group" | "batch" | "none"; advantages: number[] }[];
};

const f64 = (x: number[][] | number[]) => tensor(x, { dtype: "float64" });

/** GrpoLossInput of a fixture case, with logProbs replaced by `lp` when given. */
function inputOf(c: LossCase, lp?: Tensor): GrpoLossInput {
  const i = c.input;
  return {
    logProbs: lp ?? f64(i.logProbs),
    oldLogProbs: i.oldLogProbs ? f64(i.oldLogProbs) : null,
    refLogProbs: i.refLogProbs ? f64(i.refLogProbs) : null,
    advantages: i.advantages,
    completionMask: f64(i.completionMask),
    lossType: i.lossType,
    epsilonLow: i.epsilonLow,
    epsilonHigh: i.epsilonHigh,
    beta: i.beta,
    importanceSamplingLevel: i.importanceSamplingLevel,
    maxCompletionLength: i.maxCompletionLength ?? undefined,
    numItemsInBatch: i.numItemsInBatch ?? undefined,
    delta: i.delta,
  };
}

const close = (a: number | boolean, b: number, tol: number, what: string) => assert.ok(Math.abs(Number(a) - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

describe("groupAdvantages", () => {
  test("hand-computed: [1, 0, 0, 0] in each scale mode; a constant group; Bessel-corrected std", () => {
    const r = [1, 0, 0, 0, 2, 2, 2, 2];
    const none = groupAdvantages(r, 4, "none");
    assert.deepEqual([...none.advantages], [0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0]);
    assert.deepEqual([...none.groupMean], [0.25, 2]);
    // std of [1,0,0,0] with n - 1 = 3: sqrt((0.75^2 + 3 * 0.25^2) / 3) = 0.5
    close(none.groupStd[0], 0.5, 1e-15, "group std");
    assert.equal(none.groupStd[1], 0);
    assert.deepEqual([...none.zeroVarianceMask], [0, 1]);
    const group = groupAdvantages(r, 4, "group");
    [0.75, -0.25, -0.25, -0.25].forEach((v, i) => close(group.advantages[i], v / 0.5001, 1e-12, `group adv ${i}`));
    assert.deepEqual([...group.advantages.slice(4)], [0, 0, 0, 0], "zero-variance group: advantage 0, not NaN");
    // batch std of [1,0,0,0,2,2,2,2]: mean 1.125, sum of squares 0.015625 + 3 * 1.265625 + 4 * 0.765625 = 6.875, /7
    const batch = groupAdvantages(r, 4, "batch");
    const bstd = Math.sqrt(6.875 / 7);
    close(batch.batchStd, bstd, 1e-14, "batch std");
    close(batch.advantages[0], 0.75 / (bstd + 1e-4), 1e-12, "batch adv 0");
    assert.deepEqual([...batch.zeroVarianceMask], [0, 1], "the mask reports groups in every mode");
  });

  test("matches PyTorch with TRL's nanmean / nanstd in every scale mode, NaN (unscorable) rewards included", () => {
    assert.equal(FIX.advantages.length, 9);
    for (const c of FIX.advantages) {
      const rewards = c.rewards.map((x) => (x === null ? NaN : x));
      const got = groupAdvantages(rewards, c.groupSize, c.scale);
      assertClose([...got.advantages], c.advantages, { atol: 1e-12, rtol: 1e-12 }, `${c.scale} G=${c.groupSize}`);
    }
  });

  test("NaN rewards leave the group stats and get advantage 0; an all-NaN group has NaN mean", () => {
    const g = groupAdvantages([1, NaN, 0, NaN, NaN, NaN], 3, "group");
    assert.equal(g.groupMean[0], 0.5);
    assert.equal(g.advantages[1], 0);
    assert.ok(Number.isNaN(g.groupMean[1]));
    assert.deepEqual([...g.advantages.slice(3)], [0, 0, 0]);
    assert.deepEqual([...g.zeroVarianceMask], [0, 0], "NaN std is not 'zero variance' (torch.isclose(nan, 0) is false)");
  });

  test("G = 1: std 0, advantage 0, zero variance", () => {
    const g = groupAdvantages([0.3, -1], 1, "group");
    assert.deepEqual([...g.advantages], [0, 0]);
    assert.deepEqual([...g.zeroVarianceMask], [1, 1]);
  });

  test("bad input is an Error", () => {
    assert.throws(() => groupAdvantages([1, 2, 3], 2), /3 rewards do not split into groups of 2/);
    assert.throws(() => groupAdvantages([1, 2], 0), /groupSize must be a positive integer/);
    assert.throws(() => groupAdvantages([1, Infinity], 2), /reward 1 is Infinity/);
    assert.throws(() => groupAdvantages([1, 2], 2, "std" as never), /scale must be "group", "batch" or "none"/);
  });
});

describe("grpoLoss", () => {
  test("hand-computed grpo value with clipping on both sides", () =>
    tidy(() => {
      const c = FIX.loss.find((x) => x.name === "grpo clipped both sides")!;
      const e = Math.exp;
      // row 0, A = +1: ratio e^0.5 clipped to 1.2; 1; e^-0.5 below the band but unclipped for A > 0
      const row0 = -(1.2 + 1 + e(-0.5)) / 3;
      // row 1, A = -2: e^-0.3 clipped to 0.8; e^0.4 above the band but unclipped for A < 0; 1; e^-0.1
      const row1 = (2 * 0.8 + 2 * e(0.4) + 2 * 1 + 2 * e(-0.1)) / 4;
      // row 2, A = 0.5: all in the band
      const row2 = (-0.5 * (e(0.1) + e(0.05) + e(-0.1))) / 3;
      const hand = (row0 + row1 + row2) / 3;
      const { loss, stats } = grpoLoss(inputOf(c));
      close(loss.item(), hand, 1e-12, "loss");
      close(c.loss, hand, 1e-12, "fixture");
      // 1 of 10 completion tokens clipped low, 1 clipped high
      assert.equal(stats.clipRatioLow, 0.1);
      assert.equal(stats.clipRatioHigh, 0.1);
      close(stats.clipRatioRegion, 0.2, 1e-15, "region");
      assert.equal(stats.tokens, 10);
      assert.equal(stats.klMean, null);
    }));

  test("hand-computed k3 term: beta * (e^(ref-lp) - (ref-lp) - 1) added per token", () =>
    tidy(() => {
      const base = FIX.loss.find((x) => x.name === "bnpo clipped both sides")!;
      const withKl = FIX.loss.find((x) => x.name === "bnpo beta 0.04")!;
      const { logProbs: lp, refLogProbs: ref, completionMask: m } = withKl.input;
      let klSum = 0;
      let n = 0;
      lp.forEach((row, i) =>
        row.forEach((v, t) => {
          if (m[i][t] === 0) return;
          const d = ref![i][t] - v;
          klSum += Math.exp(d) - d - 1;
          n++;
        }),
      );
      const { loss, stats } = grpoLoss(inputOf(withKl));
      close(loss.item(), base.loss + (0.04 * klSum) / n, 1e-12, "bnpo + beta * mean k3");
      close(stats.klMean!, klSum / n, 1e-12, "klMean");
    }));

  test("every loss type, with and without KL, sequence level, delta, asymmetric eps: value, gradient and clip stats match PyTorch", () => {
    assert.equal(FIX.loss.length, 13);
    for (const c of FIX.loss) {
      tidy(() => {
        const lp = f64(c.input.logProbs).requiresGrad_(true);
        const { loss, stats } = grpoLoss(inputOf(c, lp));
        close(loss.item(), c.loss, 1e-12, `${c.name}: loss`);
        loss.backward();
        assertClose(lp.grad!, c.grad, { atol: 1e-12, rtol: 1e-10 }, `${c.name}: dloss/dlogp`);
        close(stats.clipRatioLow, c.clipRatioLow, 1e-12, `${c.name}: clipRatioLow`);
        close(stats.clipRatioHigh, c.clipRatioHigh, 1e-12, `${c.name}: clipRatioHigh`);
        close(stats.clipRatioRegion, c.clipRatioRegion, 1e-12, `${c.name}: clipRatioRegion`);
        if (c.klMean !== null) close(stats.klMean!, c.klMean, 1e-12, `${c.name}: klMean`);
        close(stats.policyLoss, c.loss, 1e-12, `${c.name}: policyLoss`);
      });
    }
  });

  test("float32 inputs give the float64 values to float32 precision", () =>
    tidy(() => {
      const c = FIX.loss.find((x) => x.name === "dr_grpo beta 0.04")!;
      const f32 = (x: number[][]) => tensor(x);
      const lp = f32(c.input.logProbs).requiresGrad_(true);
      const { loss } = grpoLoss({ ...inputOf(c), logProbs: lp, oldLogProbs: f32(c.input.oldLogProbs!), refLogProbs: f32(c.input.refLogProbs!), completionMask: f32(c.input.completionMask) });
      assert.equal(loss.dtype, "float32");
      close(loss.item(), c.loss, 1e-6, "loss");
      loss.backward();
      assertClose(lp.grad!, c.grad, { atol: 1e-6, rtol: 1e-5 });
    }));

  test("gradient w.r.t. logProbs matches finite differences for every loss type (float64)", () => {
    for (const lossType of ["grpo", "bnpo", "dr_grpo", "dapo"] as const) {
      for (const level of ["token", "sequence"] as const) {
        const c = FIX.loss.find((x) => x.name === `${lossType} beta 0.04`)!;
        tidy(() => {
          const base = inputOf(c);
          const worst = gradcheck((lp) => grpoLoss({ ...base, logProbs: lp, importanceSamplingLevel: level }).loss, [f64(c.input.logProbs)]);
          assert.ok(worst < 1e-6, `${lossType}/${level}: worst |diff| ${worst}`);
        });
      }
    }
  });

  test("old = logProbs.detach() by default: ratio 1, gradient -A / |o_i| / B per token (grpo), plus the KL gradient", () =>
    tidy(() => {
      const lp = f64([
        [-1, -2, 0],
        [-0.5, -0.1, -3],
      ]).requiresGrad_(true);
      const mask = f64([
        [1, 1, 0],
        [1, 1, 1],
      ]);
      const { loss, stats } = grpoLoss({ logProbs: lp, advantages: [1.5, -0.6], completionMask: mask, lossType: "grpo" });
      close(loss.item(), (-1.5 * 2) / 2 / 2 + (0.6 * 3) / 3 / 2, 1e-15, "loss = mean_i(-A_i)");
      assert.equal(stats.ratioMean, 1);
      loss.backward();
      assertClose(lp.grad!, [-1.5 / 2 / 2, -1.5 / 2 / 2, 0, 0.6 / 3 / 2, 0.6 / 3 / 2, 0.6 / 3 / 2], { atol: 1e-15, rtol: 0 });
    }));

  test("a gradient step raises the log-probs of positive-advantage completions and lowers negative ones", () =>
    tidy(() => {
      manualSeed(7);
      for (const lossType of ["grpo", "bnpo", "dr_grpo", "dapo"] as const) {
        const start = randn([4, 5], { dtype: "float64" }).sub(2);
        const lp = start.clone().requiresGrad_(true);
        const mask = f64([
          [1, 1, 1, 1, 1],
          [1, 1, 1, 0, 0],
          [1, 1, 1, 1, 0],
          [1, 0, 0, 0, 0],
        ]);
        const adv = [1.2, -0.7, 0.3, -1.5];
        const { loss } = grpoLoss({ logProbs: lp, advantages: adv, completionMask: mask, lossType, maxCompletionLength: 5, beta: 0 });
        loss.backward();
        const stepped = start.sub(lp.grad!.mul(0.1)).toList() as number[][];
        const before = start.toList() as number[][];
        const m = mask.toList() as number[][];
        for (let i = 0; i < 4; i++) {
          for (let t = 0; t < 5; t++) {
            const diff = stepped[i][t] - before[i][t];
            if (m[i][t] === 0) assert.equal(diff, 0, `${lossType}: padding [${i},${t}] must not move`);
            else if (adv[i] > 0) assert.ok(diff > 0, `${lossType}: [${i},${t}] should rise, moved ${diff}`);
            else assert.ok(diff < 0, `${lossType}: [${i},${t}] should fall, moved ${diff}`);
          }
        }
      }
    }));

  test("padding may hold -inf or NaN: the loss and gradient are those of clean padding", () =>
    tidy(() => {
      const c = FIX.loss.find((x) => x.name === "grpo beta 0.04")!;
      const dirty = c.input.logProbs.map((row, i) => row.map((v, t) => (c.input.completionMask[i][t] === 0 ? -Infinity : v)));
      const oldDirty = c.input.oldLogProbs!.map((row, i) => row.map((v, t) => (c.input.completionMask[i][t] === 0 ? NaN : v)));
      const lp = f64(dirty).requiresGrad_(true);
      const { loss } = grpoLoss({ ...inputOf(c), logProbs: lp, oldLogProbs: f64(oldDirty) });
      close(loss.item(), c.loss, 1e-12, "loss");
      loss.backward();
      assertClose(lp.grad!, c.grad, { atol: 1e-12, rtol: 1e-10 });
    }));

  test("advantages as a tensor or per token; bool mask; gradient accumulation scaling (not for dapo)", () =>
    tidy(() => {
      const c = FIX.loss.find((x) => x.name === "grpo clipped both sides")!;
      const asTensor = grpoLoss({ ...inputOf(c), advantages: f64(c.input.advantages) }).loss.item();
      close(asTensor, c.loss, 1e-15, "tensor advantages");
      const perToken = c.input.advantages.map((a) => new Array(4).fill(a));
      close(grpoLoss({ ...inputOf(c), advantages: f64(perToken) }).loss.item(), c.loss, 1e-15, "[B, T] advantages");
      const boolMask = f64(c.input.completionMask).ne(0);
      close(grpoLoss({ ...inputOf(c), completionMask: boolMask }).loss.item(), c.loss, 1e-15, "bool mask");
      const accum = grpoLoss({ ...inputOf(c), gradientAccumulationSteps: 4 });
      close(accum.loss.item(), c.loss / 4, 1e-15, "grpo / accumulation steps");
      close(accum.stats.policyLoss, c.loss, 1e-15, "policyLoss is before the division");
      const d = FIX.loss.find((x) => x.name === "dapo clipped both sides")!;
      close(grpoLoss({ ...inputOf(d), gradientAccumulationSteps: 4 }).loss.item(), d.loss, 1e-15, "dapo ignores accumulation steps");
      close(grpoLoss({ ...inputOf(d), numItemsInBatch: 40, numProcesses: 4 }).loss.item(), d.loss, 1e-15, "dapo normalizer numItems / processes");
    }));

  test("no tensor leaks across repeated calls", () => {
    const c = FIX.loss.find((x) => x.name === "dapo beta 0.04")!;
    const run = () =>
      tidy(() => {
        const lp = f64(c.input.logProbs).requiresGrad_(true);
        grpoLoss(inputOf(c, lp)).loss.backward();
      });
    run();
    const before = liveTensors();
    for (let k = 0; k < 20; k++) run();
    assert.equal(liveTensors(), before);
  });

  test("bad input is an Error naming what is wrong", () =>
    tidy(() => {
      const c = FIX.loss.find((x) => x.name === "grpo clipped both sides")!;
      const base = inputOf(c);
      assert.throws(() => grpoLoss({ ...base, completionMask: ones([3, 5]) }), /grpoLoss: completionMask has shape \[3, 5\], expected \[3, 4\]/);
      assert.throws(() => grpoLoss({ ...base, oldLogProbs: ones([2, 4]) }), /oldLogProbs has shape \[2, 4\]/);
      assert.throws(() => grpoLoss({ ...base, advantages: [1, 2] }), /advantages has shape \[2\], expected \[3, 4\]/);
      assert.throws(() => grpoLoss({ ...base, beta: 0.1, refLogProbs: null }), /beta != 0 needs refLogProbs/);
      assert.throws(() => grpoLoss({ ...base, lossType: "dr_grpo", maxCompletionLength: undefined }), /"dr_grpo" needs maxCompletionLength/);
      assert.throws(() => grpoLoss({ ...base, lossType: "ppo" as never }), /lossType must be one of grpo, bnpo, dr_grpo, dapo; got "ppo"/);
      assert.throws(() => grpoLoss({ ...base, logProbs: ones([3]) }), /logProbs must be a float \[B, T\] tensor/);
      assert.throws(() => grpoLoss({ ...base, epsilonLow: 1.5 }), /epsilonLow must be in \[0, 1\)/);
    }));
});

describe("per-token helpers", () => {
  test("maskTruncated zeroes truncated rows, keeps dtype; isTruncatedCompletion looks at the last token", () =>
    tidy(() => {
      const m = tensor([
        [1, 1, 0],
        [1, 1, 1],
        [1, 0, 0],
      ]);
      assert.deepEqual(maskTruncated(m, [false, true, false]).toList(), [
        [1, 1, 0],
        [0, 0, 0],
        [1, 0, 0],
      ]);
      const mb = m.ne(0);
      const out = maskTruncated(mb, tensor([true, false, true]));
      assert.equal(out.dtype, "bool");
      assert.deepEqual(out.toList(), [
        [false, false, false],
        [true, true, true],
        [false, false, false],
      ]);
      assert.throws(() => maskTruncated(m, [true]), /maskTruncated: 1 truncation flags for 3 completions/);
      assert.equal(isTruncatedCompletion([5, 9, 2], [2, 0]), false);
      assert.equal(isTruncatedCompletion([5, 9, 7], [2, 0]), true);
      assert.equal(isTruncatedCompletion([], [2]), true);
    }));

  test("entropyFromLogits: log V for uniform logits, the direct formula elsewhere, chunking changes nothing, -inf logits are fine", () =>
    tidy(() => {
      const uni = entropyFromLogits(tensor([[[0, 0, 0, 0]]], { dtype: "float64" }));
      assert.deepEqual(uni.shape, [1, 1]);
      close(uni.item(), Math.log(4), 1e-15, "uniform");
      manualSeed(3);
      const logits = randn([3, 5, 7], { dtype: "float64" });
      const lp = F.logSoftmax(logits, -1);
      const direct = lp.exp().mul(lp).sum(-1).neg();
      assertClose(entropyFromLogits(logits), direct, { atol: 1e-14, rtol: 0, shape: [3, 5] });
      assertClose(entropyFromLogits(logits, 2), direct, { atol: 1e-14, rtol: 0 }, "chunkSize 2 over 15 rows");
      // a banned token (-inf) is ignored: entropy of the 3 others, uniform -> log 3
      close(entropyFromLogits(tensor([[1, 1, -Infinity, 1]], { dtype: "float64" })).item(), Math.log(3), 1e-15, "-inf logit");
      gradcheck((x) => entropyFromLogits(x, 4), [randn([2, 3, 5], { dtype: "float64" })]);
    }));

  test("selectiveLogProbs equals log_softmax + gather in float64, float32 and bfloat16, and is differentiable", () =>
    tidy(() => {
      manualSeed(11);
      const logits = randn([2, 4, 9], { dtype: "float64" }).mul(3);
      const ids = tensor([
        [0, 8, 3, 3],
        [5, 1, 7, 2],
      ], { dtype: "int64" });
      const ref = F.logSoftmax(logits, -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1);
      assertClose(selectiveLogProbs(logits, ids), ref, { atol: 1e-14, rtol: 0, shape: [2, 4] });
      assertClose(selectiveLogProbs(logits.float(), ids), ref, { atol: 1e-5, rtol: 1e-6 }, "float32");
      const bf = selectiveLogProbs(logits.bfloat16(), ids);
      assert.equal(bf.dtype, "bfloat16");
      assertClose(bf, ref, { atol: 0.1, rtol: 0.02 }, "bfloat16");
      gradcheck((x) => selectiveLogProbs(x, ids), [logits]);
      assert.throws(() => selectiveLogProbs(logits, ids.float()), /ids must be int64/);
      assert.throws(() => selectiveLogProbs(logits, ids.slice(1, 0, 3)), /ids must be \[2, 4\], got shape \[2, 3\]/);
    }));
});
