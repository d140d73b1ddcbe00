// Random initialization as HF's _init_weights for Llama and Idefics3:
// Linear and Conv2d weights ~ N(0, std^2) with zero bias, Embedding rows
// ~ N(0, std^2) with the padding row zeroed, LayerNorm (1, 0), RMSNorm 1.
// Idefics3 uses text_config.initializer_range for every part, vision included.
// Draws come from one seeded generator in module order, so a seed and an
// architecture give the same weights on every run.
import { Conv2d, Embedding, LayerNorm, Linear, type Module, RMSNorm } from "../nn/index.js";
import { Generator, noGrad, randn, type Tensor } from "../torch/index.js";

/** Fills every parameter of a freshly built model; throws if some parameter has no rule. */
export function initWeights(model: Module, std: number, seed: number): void {
  const g = new Generator(seed);
  const done = new Set<Tensor>();
  const normal = (t: Tensor) => {
    if (done.has(t)) return;
    const r = randn(t.shape, { generator: g });
    const s = r.mul(std);
    t.copy_(s);
    r.dispose();
    s.dispose();
    done.add(t);
  };
  const fill = (t: Tensor | null, v: number) => {
    if (!t || done.has(t)) return;
    t.fill_(v);
    done.add(t);
  };
  noGrad(() => {
    for (const [, m] of model.namedModules()) {
      if (m instanceof Linear || m instanceof Conv2d) {
        normal(m.weight);
        fill(m.bias, 0);
      } else if (m instanceof Embedding) {
        normal(m.weight);
        if (m.paddingIdx !== null) {
          const row = m.weight.select(0, m.paddingIdx);
          row.zero_();
          row.dispose();
        }
      } else if (m instanceof LayerNorm) {
        fill(m.weight, 1);
        fill(m.bias, 0);
      } else if (m instanceof RMSNorm) {
        fill(m.weight, 1);
      }
    }
  });
  const missed = model.namedParameters().filter(([, t]) => !done.has(t));
  if (missed.length) throw new Error(`initWeights: no init rule for ${missed.map(([k]) => `'${k}'`).join(", ")}`);
}
