// The answer probe against a reference computed the slow way: one forward
// pass per image and per answer prefix, no padding, probabilities multiplied
// token by token. Batched probing (left padding, one pass over the category
// chain) must give the same P(offensive) and P(category named).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { synthesizeDataset } from "../../src/data/synth/writer.js";
import type { Example } from "../../src/data/types.js";
import { catImageInputs, initModel } from "../../src/models/index.js";
import { planAnswerProbe, probeAnswers } from "../../src/policy/answer_probe.js";
import { collatePrompts, disposeEncoded, disposePromptBatch, loadPolicy, type Policy } from "../../src/policy/index.js";
import { F, liveTensors, noGrad, tensor, tidy } from "../../src/torch/index.js";

let root = "";
let policy: Policy;
let examples: Example[] = [];

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-probe-"));
  const ds = await synthesizeDataset({ outDir: path.join(root, "data"), n: 12, imageSize: 32, seed: 2 });
  const modelDir = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "model"), seed: 3 })).dir;
  policy = await loadPolicy({ modelDir, prompt: { systemPrompt: "", userPrompt: "Categories: {categories}?" } });
  examples = fs
    .readFileSync(ds.manifest, "utf8")
    .trim()
    .split("\n")
    .slice(0, 3)
    .map((l) => JSON.parse(l))
    .map((r) => ({ id: r.id, image: { path: path.join(root, "data", r.image) }, labels: r.labels, source: { file: ds.manifest } }));
});
after(() => {
  policy.dispose();
  fs.rmSync(root, { recursive: true, force: true });
});

/** P(the last `scored` tokens of `full` | prompt + the tokens before them), one unpadded prompt, teacher forced. */
async function reference(ex: Example, full: number[], scored: number): Promise<number> {
  const enc = await policy.encoder.encodePrompt(ex);
  try {
    const ids = [...enc.ids, ...full];
    return noGrad(() =>
      tidy(() => {
        const input = tensor([ids], { dtype: "int64" });
        const logits = policy.model.forward({ inputIds: input, attentionMask: input.mul(0).add(1), ...catImageInputs([enc.images])! }).logits;
        const probs = F.softmax(logits.select(0, 0), -1); // [T, V]
        let p = 1;
        // Score the last `scored` tokens of `full`.
        for (let i = full.length - scored; i < full.length; i++) p *= probs.select(0, enc.ids.length + i - 1).select(0, full[i]).item() as number;
        return p;
      }),
    );
  } finally {
    disposeEncoded([enc]);
  }
}

test("probe plan for the default categories: where 'safe', 'nudity' and 'weapons' leave the chain", () => {
  const plan = planAnswerProbe(policy);
  const enc = (s: string) => policy.tokenizer.encode(s, { addSpecialTokens: false });
  assert.deepEqual(plan.chain, enc("<answer>nudity, weapons"));
  assert.equal(plan.start, enc("<answer>").length, "the probe starts right after <answer> (this tokenizer does not merge across it)");
  assert.equal(plan.safe.shared, plan.start);
  assert.equal(plan.categories[0].length, 1); // nudity: only as the first category
  assert.equal(plan.categories[1].length, 2); // weapons: first, or after nudity
});

test("batched probe scores equal one-image teacher-forced references (1e-5), nothing leaked", async () => {
  const plan = planAnswerProbe(policy);
  const enc = (s: string) => policy.tokenizer.encode(s, { addSpecialTokens: false });
  const a = enc("<answer>").length;
  const encoded = await Promise.all(examples.map((x) => policy.encoder.encodePrompt(x)));
  const batch = collatePrompts(encoded, policy.padTokenId);
  await probeAnswers(policy, batch, plan); // warm the rotary tables
  const live = liveTensors();
  const got = probeAnswers(policy, batch, plan);
  assert.equal(liveTensors(), live);
  disposePromptBatch(batch);
  disposeEncoded(encoded);
  const nw = enc("<answer>nudity, weapons");
  const tokensOfNudity = enc("<answer>nudity").length - a;
  for (const [k, ex] of examples.entries()) {
    // P(safe): the first token of "safe" after <answer>.
    const safeFirst = await reference(ex, enc("<answer>safe").slice(0, a + 1), 1);
    // P(nudity named) = P(the answer starts with "nudity", all its tokens).
    const nudity = await reference(ex, enc("<answer>nudity"), tokensOfNudity);
    // P(weapons named) = P(the first token of "weapons" after <answer>) + P("nudity, weapons", all its tokens).
    const wFirst = await reference(ex, enc("<answer>weapons").slice(0, a + 1), 1);
    const viaNudity = await reference(ex, nw, nw.length - a);
    const want = { offensive: 1 - safeFirst, nudity, weapons: wFirst + viaNudity };
    const g = got[k];
    assert.ok(Math.abs(g.offensive - want.offensive) < 1e-5, `offensive ${g.offensive} vs ${want.offensive}`);
    assert.ok(Math.abs(g.categories[0] - want.nudity) < 1e-5, `nudity ${g.categories[0]} vs ${want.nudity}`);
    assert.ok(Math.abs(g.categories[1] - want.weapons) < 1e-5, `weapons ${g.categories[1]} vs ${want.weapons}`);
  }
});
