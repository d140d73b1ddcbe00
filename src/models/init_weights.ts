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

/**
 * Seeded in-place fills that every family's init shares: each draw comes from
 * one generator in call order (so a seed gives the same weights on every
 * run), each tensor is filled once (tied weights are skipped the second
 * time), and `check` names any parameter no rule reached.
 */
export class ParamFiller {
  private readonly g: Generator;
  private readonly done = new Set<Tensor>();
  constructor(seed: number) {
    this.g = new Generator(seed);
  }
  /** ~ N(0, std^2). */
  normal(t: Tensor | null, std: number): void {
    if (!t || this.done.has(t)) return;
    const r = randn(t.shape, { generator: this.g });
    const s = r.mul(std);
    t.copy_(s);
    r.dispose();
    s.dispose();
    this.done.add(t);
  }
  /** Xavier-uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) of a [out, in] weight. */
  xavierUniform(t: Tensor): void {
    if (this.done.has(t)) return;
    const [fanOut, fanIn] = t.shape;
    const a = Math.sqrt(6 / (fanIn + fanOut));
    const r = rand(t.shape, { generator: this.g });
    const s = r.mul(2 * a).sub(a);
    t.copy_(s);
    r.dispose();
    s.dispose();
    this.done.add(t);
  }
  /** LeCun-normal (untruncated): N(0, 1 / fan_in), fan_in = all dims but the first. */
  lecunNormal(t: Tensor): void {
    this.normal(t, 1 / Math.sqrt(t.numel / t.shape[0]));
  }
  fill(t: Tensor | null, v: number): void {
    if (!t || this.done.has(t)) return;
    t.fill_(v);
    this.done.add(t);
  }
  /** An embedding ~ N(0, std^2) with its padding row zeroed (HF's _init_weights). */
  embedding(m: Embedding, std: number): void {
    this.normal(m.weight, std);
    if (m.paddingIdx !== null) {
      const row = m.weight.select(0, m.paddingIdx);
      row.zero_();
      row.dispose();
    }
  }
  /** Throws naming every parameter of `model` that no rule filled. */
  check(model: Module, where: string): void {
    const missed = model.namedParameters().filter(([, t]) => !this.done.has(t));
    if (missed.length) throw new Error(`${where}: no init rule for ${missed.map(([k]) => `'${k}'`).join(", ")}`);
  }
}

/** Fills every parameter of a freshly built model; throws if some parameter has no rule. */
export function initWeights(model: Module, std: number, seed: number, opts: InitWeightsOptions = {}): void {
  const f = new ParamFiller(seed);
  const siglip = opts.vision === "siglip";
  const prefixes = opts.visionPrefixes ?? (model as Partial<{ moduleScopes: ModuleScopes }>).moduleScopes?.vision ?? [];
  if (siglip && prefixes.length === 0) throw new Error("initWeights: vision 'siglip' needs the vision tower's module path (visionPrefixes)");
  const inVision = (name: string) => prefixes.some((p) => name.startsWith(`${p}.`));
  noGrad(() => {
    for (const [name, m] of model.namedModules()) {
      if (siglip && inVision(name)) {
        if (m instanceof Embedding) f.normal(m.weight, 1 / Math.sqrt(m.weight.shape[1]));
        else if (m instanceof Linear && /\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])$/.test(name)) {
          f.xavierUniform(m.weight);
          if (m.bias) (/mlp\.fc[12]$/.test(name) ? f.normal(m.bias, 1e-6) : f.fill(m.bias, 0));
        } else if (m instanceof Linear || m instanceof Conv2d) {
          f.lecunNormal(m.weight);
          f.fill(m.bias, 0);
        }
      }
      if (m instanceof Linear || m instanceof Conv2d) {
        f.normal(m.weight, std);
        f.fill(m.bias, 0);
      } else if (m instanceof Embedding) {
        f.embedding(m, std);
      } else if (m instanceof LayerNorm) {
        f.fill(m.weight, 1);
        f.fill(m.bias, 0);
      } else if (m instanceof RMSNorm) {
        f.fill(m.weight, 1);
      }
    }
  });
  f.check(model, "initWeights");
}
