// One GRPO update on a tiny Llama raises the log-probability of the
// completions with positive advantage and lowers the negative ones.
import assert from "node:assert/strict";
import { test } from "node:test";
import { collateCompletions, type PromptBatch } from "../../src/policy/collate.js";
import { groupAdvantages, grpoLoss, selectiveLogProbs } from "../../src/train/grpo_math.js";
import { generate } from "../../src/generate/generate.js";
import { SGD } from "../../src/torch/optim/index.js";
import { liveTensors, tensor, tidy } from "../../src/torch/index.js";
import { seededModel, testConfig } from "../models/helpers.js";

test("a GRPO step moves sequence log-probs in the direction of the advantages", () => {
  const model = seededModel(testConfig("llama"), 11);
  // Warm-up: the rotary embedding caches its cos/sin tables on first use.
  tidy(() => model.forward({ inputIds: tensor([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]], { dtype: "int64" }) }));
  const before = liveTensors();
  const prompt: PromptBatch = tidy(() => ({
    inputIds: tensor([[1, 7, 9, 4, 12]], { dtype: "int64" }),
    attentionMask: tensor([[1, 1, 1, 1, 1]], { dtype: "int64" }),
    images: [null],
    imageTokens: [0],
    promptLengths: [5],
  }));
  const G = 6;
  const gen = generate(model, { inputIds: prompt.inputIds, attentionMask: prompt.attentionMask }, { numReturnSequences: G, maxNewTokens: 5, temperature: 1.5, seed: 3, eosTokenIds: [2], padTokenId: 0 });
  // A reward that prefers completions whose first token is even.
  const rewards = gen.completions.map((c) => (c.tokenIds[0] % 2 === 0 ? 1 : 0));
  assert.ok(new Set(rewards).size === 2, `the sampled group needs both rewards (got ${rewards})`);
  const adv = groupAdvantages(rewards, G, "group").advantages;
  const seqLogProbs = () =>
    tidy(() => {
      const c = collateCompletions(prompt, gen.completions, 0);
      const C = c.completionLength;
      const logits = model.forward({ inputIds: c.inputIds, attentionMask: c.attentionMask, logitsToKeep: C + 1 }).logits.narrow(1, 0, C);
      const lp = selectiveLogProbs(logits, c.completionIds);
      return { lp, mask: c.completionMask };
    });
  const sums = (x: { lp: { mul: Function }; mask: unknown }) => tidy(() => (x.lp as never as import("../../src/torch/index.js").Tensor).mul((x.mask as import("../../src/torch/index.js").Tensor).float()).sum(1).toFlatArray());
  model.train();
  const opt = new SGD(model.parameters(), { lr: 0.05 });
  const first = seqLogProbs();
  const s0 = sums(first);
  tidy(() => {
    const { loss } = grpoLoss({ logProbs: first.lp, advantages: adv, completionMask: first.mask, lossType: "grpo" });
    loss.backward();
  });
  opt.step();
  opt.zeroGrad();
  first.lp.dispose();
  first.mask.dispose();
  const after = seqLogProbs();
  const s1 = sums(after);
  after.lp.dispose();
  after.mask.dispose();
  for (let i = 0; i < G; i++) {
    if (adv[i] > 0) assert.ok(s1[i] > s0[i], `completion ${i} (advantage ${adv[i].toFixed(2)}): log-prob ${s0[i].toFixed(4)} -> ${s1[i].toFixed(4)} should rise`);
    if (adv[i] < 0) assert.ok(s1[i] < s0[i], `completion ${i} (advantage ${adv[i].toFixed(2)}): log-prob ${s0[i].toFixed(4)} -> ${s1[i].toFixed(4)} should fall`);
  }
  opt.dispose();
  prompt.inputIds.dispose();
  prompt.attentionMask.dispose();
  assert.equal(liveTensors(), before);
  model.dispose();
});
