// Random initialization as HF's _init_weights for Llama and Idefics3:
// Linear and Conv2d weights ~ N(0, std^2) with zero bias, Embedding rows
// ~ N(0, std^2) with the padding row zeroed, LayerNorm (1, 0), RMSNorm 1.
// Idefics3 uses text_config.initializer_range for every part, vision included.
// Option `vision: "siglip"` initializes the vision tower instead as HF's
// SiglipPreTrainedModel does for a SigLIP trained from scratch: position
// embeddings ~ N(0, 1/hidden), attention and MLP weights Xavier-uniform (MLP
// biases ~ N(0, 1e-12)), the patch convolution LeCun-normal (std
// 1/sqrt(fan_in), untruncated here). With std 0.02 everywhere a small random
// vision tower's MLPs sit in GELU's nearly linear range, and a model trained
// from scratch (the demo) then learns from the image only slowly.
// Draws come from one seeded generator in module order, so a seed and an
// architecture give the same weights on every run.
import { Conv2d, Embedding, LayerNorm, Linear, type Module, RMSNorm } from "../nn/index.js";
import { Generator, noGrad, rand, randn, type Tensor } from "../torch/index.js";
import type { ModuleScopes } from "./vlm.js";

export interface InitWeightsOptions {
  /** "initializer_range" (default: HF Idefics3's std for every part) or "siglip" (SigLIP's own scheme for the vision tower). */
  vision?: "initializer_range" | "siglip";
  /** Module path prefixes of the SigLIP vision tower (default: the model's moduleScopes.vision, if it has them). */
  visionPrefixes?: readonly string[];
}

/** Fills every parameter of a freshly built model; throws if some parameter has no rule. */
export function initWeights(model: Module, std: number, seed: number, opts: InitWeightsOptions = {}): void {
  const g = new Generator(seed);
  const done = new Set<Tensor>();
  const normalStd = (t: Tensor, sd: number) => {
    if (done.has(t)) return;
    const r = randn(t.shape, { generator: g });
    const s = r.mul(sd);
    t.copy_(s);
    r.dispose();
    s.dispose();
    done.add(t);
  };
  const normal = (t: Tensor) => normalStd(t, std);
  const xavierUniform = (t: Tensor) => {
    if (done.has(t)) return;
    const [fanOut, fanIn] = t.shape;
    const a = Math.sqrt(6 / (fanIn + fanOut));
    const r = rand(t.shape, { generator: g });
    const s = r.mul(2 * a).sub(a);
    t.copy_(s);
    r.dispose();
    s.dispose();
    done.add(t);
  };
  const siglip = opts.vision === "siglip";
  const prefixes = opts.visionPrefixes ?? (model as Partial<{ moduleScopes: ModuleScopes }>).moduleScopes?.vision ?? [];
  if (siglip && prefixes.length === 0) throw new Error("initWeights: vision 'siglip' needs the vision tower's module path (visionPrefixes)");
  const inVision = (name: string) => prefixes.some((p) => name.startsWith(`${p}.`));
  const fill = (t: Tensor | null, v: number) => {
    if (!t || done.has(t)) return;
    t.fill_(v);
    done.add(t);
  };
  noGrad(() => {
    for (const [name, m] of model.namedModules()) {
      if (siglip && inVision(name)) {
        if (m instanceof Embedding) normalStd(m.weight, 1 / Math.sqrt(m.weight.shape[1]));
        else if (m instanceof Linear && /\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])$/.test(name)) {
          xavierUniform(m.weight);
          if (m.bias) (/mlp\.fc[12]$/.test(name) ? normalStd(m.bias, 1e-6) : fill(m.bias, 0));
        } else if (m instanceof Linear || m instanceof Conv2d) {
          normalStd(m.weight, 1 / Math.sqrt(m.weight.numel / m.weight.shape[0]));
          fill(m.bias, 0);
        }
      }
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
