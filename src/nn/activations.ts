// Activation functions by their Hugging Face config names (hidden_act).
import { F, type Tensor, tidy } from "../torch/index.js";

export type Activation = (x: Tensor) => Tensor;

const ACTIVATIONS: Record<string, Activation> = {
  silu: F.silu,
  swish: F.silu,
  relu: F.relu,
  gelu: (x) => F.gelu(x),
  // gelu_new / gelu_fast / gelu_pytorch_tanh are the tanh approximation
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); SigLIP uses gelu_pytorch_tanh.
  gelu_pytorch_tanh: (x) => F.gelu(x, "tanh"),
  gelu_new: (x) => F.gelu(x, "tanh"),
  gelu_fast: (x) => F.gelu(x, "tanh"),
  quick_gelu: (x) => tidy(() => x.mul(F.sigmoid(x.mul(1.702)))),
  tanh: F.tanh,
  sigmoid: F.sigmoid,
};

/** The activation named `name` (an HF hidden_act value); throws listing the known names. */
export function activation(name: string): Activation {
  const fn = ACTIVATIONS[name];
  if (!fn) throw new Error(`unknown activation '${name}'; supported: ${Object.keys(ACTIVATIONS).join(", ")}`);
  return fn;
}

export const ACTIVATION_NAMES: readonly string[] = Object.keys(ACTIVATIONS);
