// GRPO against TRL 1.13's GRPOTrainer (test/peers/py/trl_peer.py): a real
// trainer on a tiny Idefics3 model written by our init-model, 3 image prompts x
// G = 4 fixed completions (lengths 2..7, some ending in EOS), fixed rewards
// (one group of equal rewards, one unscorable completion), temperature 0.7,
// beta 0.04, epsilon 0.2 / epsilon_high 0.28, num_iterations 2, 2 gradient
// accumulation steps. Only TRL's sampling is replaced (by the fixed ids).
//   - per-token log-probs: ours (our forward, logits / temperature,
//     selectiveLogProbs) equal TRL's old and reference log-probs
//     (_get_per_token_logps_and_entropies) within 1e-5 on completion tokens;
//   - advantages: groupAdvantages equals TRL's for scale_rewards group, batch
//     and none within 1e-6 (TRL computes in float32);
//   - loss: grpoLoss equals GRPOTrainer._compute_loss for grpo, bnpo, dr_grpo,
//     dapo (token level) and grpo at sequence level (GSPO), with old and
//     reference log-probs perturbed by fixed noise (std 0.3) so that ratios
//     fall on both sides of the clip range, within 1e-6 + 1e-4 relative, with
//     TRL's use_bias_correction_kl off and on (its default; ours:
//     grpoLoss's biasCorrectionKl, the run config's grpo.use_bias_correction_kl);
//     the bias-corrected loss must differ from the plain one (ratios != 1).
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { runConfigSchema } from "../../src/config/run_config.js";
import { validate } from "../../src/config/schema.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { loadPretrained } from "../../src/models/index.js";
import { cat, type Tensor, tidy } from "../../src/torch/index.js";
import { groupAdvantages, grpoLoss, type LossType, selectiveLogProbs } from "../../src/train/grpo_math.js";
import { peerSkip, runPython, scratch } from "./helpers/bridge.js";
import { vlmGrpo } from "./helpers/cli.js";

const LOGP_ATOL = 1e-5;
const ADV_ATOL = 1e-6;
const LOSS_ATOL = 1e-6;
const LOSS_RTOL = 1e-4;
const G = 4;
const TEMPERATURE = 0.7;
const EOS = 1278; // <end_of_utterance> of the tiny preset
const GRAD_ACCUM = 2;
const MAX_COMPLETION = 8;

/** Fixed completions (prompt-major, G per prompt): ordinary vocabulary ids, lengths 2..7, every third ends in EOS. */
const COMPLETIONS: number[][] = Array.from({ length: 3 * G }, (_, i) => {
  const len = 2 + ((i * 5) % 6);
  const ids = Array.from({ length: len }, (_, j) => 40 + ((i * 97 + j * 31) % 1100));
  if (i % 3 === 0) ids[len - 1] = EOS;
  return ids;
});
/** Rewards: a spread group, a group with no variance, a group with one unscorable (null) completion. */
const REWARDS: (number | null)[] = [1, 0, 0.5, -1, 0.3, 0.3, 0.3, 0.3, 2, null, -0.5, 0.25];
/**
 * TRL 1.13 defaults to use_bias_correction_kl=True: its KL term is k3 times
 * the importance ratio exp(logp - old). The perturbed old log-probs make the
 * ratio differ from 1, so the two settings give different losses; each case
 * runs ours with the same setting as TRL.
 */
const LOSS_CASES: { name: string; lossType: LossType; level: "token" | "sequence"; biasCorrectionKl: boolean }[] = [
  { name: "grpo-token", lossType: "grpo", level: "token", biasCorrectionKl: false },
  { name: "bnpo-token", lossType: "bnpo", level: "token", biasCorrectionKl: false },
  { name: "dr_grpo-token", lossType: "dr_grpo", level: "token", biasCorrectionKl: false },
  { name: "dapo-token", lossType: "dapo", level: "token", biasCorrectionKl: false },
  { name: "grpo-sequence", lossType: "grpo", level: "sequence", biasCorrectionKl: false },
  { name: "dapo-token, TRL default bias-corrected KL", lossType: "dapo", level: "token", biasCorrectionKl: true },
  { name: "grpo-token, TRL default bias-corrected KL", lossType: "grpo", level: "token", biasCorrectionKl: true },
];

interface TrlResponse {
  advantages: Record<"group" | "batch" | "none", number[]>;
  losses: Record<string, number>;
  num_items_in_batch: number;
  current_gradient_accumulation_steps: number;
  steps_per_generation: number;
  num_processes: number;
  max_completion_length: number;
  temperature: number;
  default_use_bias_correction_kl: boolean;
}

const skip = peerSkip();
const work = scratch("vlm-peers-trl-");
after(work.cleanup);
let trl: TrlResponse;
let modelDir = "";
let tensors: Map<string, Tensor>;

before(() => {
  if (skip) return;
  modelDir = path.join(work.dir, "model");
  vlmGrpo(["init-model", "--arch", "idefics3", "--preset", "tiny", "--out", modelDir, "--seed", "4", "--init-std", "0.1"]);
  trl = runPython<TrlResponse>(
    "trl_peer.py",
    {
      model_dir: modelDir,
      prompts: ["Is it offensive?", "Describe the image.", "Any weapons here?"],
      images: [
        [40, 40],
        [56, 40],
        [32, 32],
      ],
      num_generations: G,
      completions: COMPLETIONS,
      rewards: REWARDS,
      temperature: TEMPERATURE,
      beta: 0.04,
      epsilon: 0.2,
      epsilon_high: 0.28,
      num_iterations: 2,
      grad_accum: GRAD_ACCUM,
      max_completion_length: MAX_COMPLETION,
      loss_cases: LOSS_CASES.map((c) => ({ name: c.name, loss_type: c.lossType, importance_sampling_level: c.level, bias_correction_kl: c.biasCorrectionKl })),
      out: work.dir,
    },
    { dir: work.dir },
  ).response;
  tensors = loadSafetensors(path.join(work.dir, "trl.safetensors"));
});
after(() => {
  for (const t of tensors?.values() ?? []) t.dispose();
});

/** Our per-token log-probs of the completions: forward over prompt + completion, logits / T, selectiveLogProbs. */
async function oursLogProbs(): Promise<Tensor> {
  const { model } = await loadPretrained(modelDir, { dtype: "float32" });
  try {
    return tidy(() => {
      const p = tensors.get("prompt_ids")!;
      const c = tensors.get("completion_ids")!;
      const inputIds = cat([p, c], 1);
      const attentionMask = cat([tensors.get("prompt_mask")!, tensors.get("completion_mask")!], 1);
      const { logits } = model.forward({ inputIds, attentionMask, pixelValues: tensors.get("pixel_values"), pixelAttentionMask: tensors.get("pixel_attention_mask") });
      const P = p.size(1);
      const C = c.size(1);
      // The logits at position t predict token t + 1: completion token j is predicted at P - 1 + j.
      return selectiveLogProbs(logits.narrow(1, P - 1, C).div(TEMPERATURE), c);
    });
  } finally {
    model.dispose();
  }
}

const maxMaskedDiff = (a: Tensor, b: Tensor, mask: Tensor) => tidy(() => a.sub(b).abs().mul(mask.ne(0).to(a.dtype)).max().item() as number);

describe("GRPO against TRL's GRPOTrainer", { skip }, () => {
  test("TRL ran as configured (temperature, accumulation, one process, token count)", () => {
    assert.equal(trl.temperature, TEMPERATURE);
    assert.equal(trl.current_gradient_accumulation_steps, GRAD_ACCUM);
    assert.equal(trl.steps_per_generation, GRAD_ACCUM);
    assert.equal(trl.num_processes, 1);
    assert.equal(trl.max_completion_length, MAX_COMPLETION);
    assert.equal(trl.default_use_bias_correction_kl, true, "TRL 1.13's default");
    assert.equal(validate(runConfigSchema, {}).grpo.use_bias_correction_kl, trl.default_use_bias_correction_kl, "our run config's grpo.use_bias_correction_kl defaults as TRL's");
    assert.equal(trl.num_items_in_batch, COMPLETIONS.reduce((a, c) => a + c.length, 0));
    assert.deepEqual(tensors.get("completion_ids")!.shape, [COMPLETIONS.length, Math.max(...COMPLETIONS.map((c) => c.length))]);
  });

  test(`per-token log-probs equal TRL's old and reference log-probs within ${LOGP_ATOL}`, async (t) => {
    const ours = await oursLogProbs();
    try {
      const mask = tensors.get("completion_mask")!;
      const dOld = maxMaskedDiff(ours, tensors.get("old_per_token_logps")!, mask);
      const dRef = maxMaskedDiff(ours, tensors.get("ref_per_token_logps")!, mask);
      const scale = tidy(() => ours.abs().mul(mask).max().item() as number);
      t.diagnostic(`max |ours - TRL old| ${dOld.toExponential(2)}, |ours - TRL ref| ${dRef.toExponential(2)}; max |logp| ${scale.toFixed(2)}`);
      assert.ok(dOld <= LOGP_ATOL, `old: ${dOld}`);
      assert.ok(dRef <= LOGP_ATOL, `ref: ${dRef}`);
    } finally {
      ours.dispose();
    }
  });

  for (const mode of ["group", "batch", "none"] as const) {
    test(`advantages, scale_rewards "${mode}": equal within ${ADV_ATOL}`, () => {
      const ours = groupAdvantages(REWARDS.map((r) => (r === null ? Number.NaN : r)), G, mode).advantages;
      const theirs = trl.advantages[mode];
      assert.equal(ours.length, theirs.length);
      ours.forEach((a, i) => assert.ok(Math.abs(a - theirs[i]) <= ADV_ATOL, `advantage ${i}: ours ${a}, TRL ${theirs[i]}`));
    });
  }

  test("TRL's bias-corrected KL changes the loss here (so the cases with it on test the ratio factor)", () => {
    for (const lossType of ["grpo", "dapo"]) {
      const plain = trl.losses[`${lossType}-token`];
      const corrected = trl.losses[`${lossType}-token, TRL default bias-corrected KL`];
      assert.ok(Math.abs(plain - corrected) > 10 * (LOSS_ATOL + LOSS_RTOL * Math.abs(plain)), `${lossType}: ${plain} vs ${corrected}`);
    }
  });

  for (const c of LOSS_CASES) {
    test(`loss ${c.name}: grpoLoss equals GRPOTrainer._compute_loss (clipped ratios, KL, accumulation)`, async (t) => {
      const logProbs = await oursLogProbs();
      try {
        const { loss, stats } = grpoLoss({
          logProbs,
          oldLogProbs: tensors.get("old_perturbed"),
          refLogProbs: tensors.get("ref_perturbed"),
          advantages: tensors.get("advantages_group")!,
          completionMask: tensors.get("completion_mask")!,
          epsilonLow: 0.2,
          epsilonHigh: 0.28,
          beta: 0.04,
          biasCorrectionKl: c.biasCorrectionKl,
          lossType: c.lossType,
          importanceSamplingLevel: c.level,
          maxCompletionLength: MAX_COMPLETION,
          numItemsInBatch: trl.num_items_in_batch,
          numProcesses: 1,
          gradientAccumulationSteps: GRAD_ACCUM,
        });
        const ours = loss.item() as number;
        loss.dispose();
        const theirs = trl.losses[c.name];
        t.diagnostic(`ours ${ours}, TRL ${theirs}, |diff| ${Math.abs(ours - theirs).toExponential(2)}; clipped low ${stats.clipRatioLow.toFixed(3)} high ${stats.clipRatioHigh.toFixed(3)}`);
        assert.ok(stats.clipRatioRegion > 0, "some ratios were clipped (else the clip terms go untested)");
        assert.ok(Math.abs(ours - theirs) <= LOSS_ATOL + LOSS_RTOL * Math.abs(theirs), `loss: ours ${ours}, TRL ${theirs}`);
      } finally {
        logProbs.dispose();
      }
    });
  }
});
