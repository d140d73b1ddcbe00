// Idefics3's connector: pixel shuffle (space-to-depth) of the vision tokens,
// then a bias-free linear projection into the text model's hidden size.
// Module path: modality_projection.proj.weight.
import { Linear, Module } from "../../nn/index.js";
import { type Tensor, tidy } from "../../torch/index.js";
import type { ModelPlacement } from "../llama.js";
import type { Idefics3Config } from "./config.js";

/**
 * (N, S, D) -> (N, S / s^2, D * s^2) for a square grid of S = side^2 tokens,
 * with the exact reshape/permute sequence of HF's Idefics3Connector.pixel_shuffle.
 * Output token (R, C) (row-major over the side/s grid) concatenates the s x s
 * block of input tokens (s*R + i, s*C + j) in row-major (i, j) order:
 * feature index (i * s + j) * D + d.
 */
export function pixelShuffle(x: Tensor, scale: number): Tensor {
  const [n, seq, d] = x.shape;
  const side = Math.round(Math.sqrt(seq));
  if (side * side !== seq) throw new Error(`pixelShuffle: ${seq} tokens do not form a square grid`);
  if (side % scale !== 0) throw new Error(`pixelShuffle: grid side ${side} is not a multiple of scale factor ${scale}`);
  return tidy(() =>
    x
      .reshape(n, side, side / scale, d * scale) // (N, h, w/s, D*s): s neighbouring columns joined
      .permute(0, 2, 1, 3) // (N, w/s, h, D*s)
      .reshape(n, side / scale, side / scale, d * scale * scale) // (N, w/s, h/s, D*s*s): s rows joined
      .permute(0, 2, 1, 3) // (N, h/s, w/s, D*s*s)
      .reshape(n, seq / (scale * scale), d * scale * scale),
  );
}

/** HF Idefics3SimpleMLP: one Linear(vision_hidden * s^2 -> text_hidden, bias=False). */
export class Idefics3SimpleMLP extends Module {
  proj: Linear;
  constructor(c: Idefics3Config, o: ModelPlacement = {}) {
    super();
    this.proj = this.addModule("proj", new Linear(c.vision.hiddenSize * c.scaleFactor ** 2, c.text.hiddenSize, { bias: false, ...o }));
  }
  forward(x: Tensor): Tensor {
    return this.proj.forward(x);
  }
}

export class Idefics3Connector extends Module {
  modality_projection: Idefics3SimpleMLP;
  readonly scaleFactor: number;

  constructor(c: Idefics3Config, o: ModelPlacement = {}) {
    super();
    this.scaleFactor = c.scaleFactor;
    this.modality_projection = this.addModule("modality_projection", new Idefics3SimpleMLP(c, o));
  }

  /** vision tokens (N, S, Dv) -> (N, S / s^2, Dtext) */
  forward(imageHidden: Tensor): Tensor {
    return tidy(() => this.modality_projection.forward(pixelShuffle(imageHidden, this.scaleFactor)));
  }
}
