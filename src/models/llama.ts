// Llama decoder (HF transformers' LlamaModel / LlamaForCausalLM): pre-norm
// blocks of grouped-query self-attention with rotary embeddings and a SwiGLU
// MLP, RMSNorm, and a linear LM head (optionally tied to the embeddings).
// Module paths are the checkpoint keys: model.embed_tokens.weight,
// model.layers.N.self_attn.{q,k,v,o}_proj.weight, model.layers.N.mlp.{gate,up,down}_proj.weight,
// model.layers.N.{input,post_attention}_layernorm.weight, model.norm.weight, lm_head.weight.
import { activation, type Activation, attend, decoderMask, type DecoderMask, Embedding, KVCache, type KVCacheOptions, Linear, Module, ModuleList, RMSNorm } from "../nn/index.js";
import { arange, type Device, type DType, type Tensor, tidy } from "../torch/index.js";
import type { LlamaConfig } from "./configs.js";
import { applyRotary, RotaryEmbedding } from "./rope.js";

/** The decoder projections PEFT targets by default for Llama-style decoders. */
export const LLAMA_LORA_TARGETS: readonly string[] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/** Where and in which dtype a model's parameters are allocated. */
export interface ModelPlacement {
  /** Parameter / compute dtype (default float32; bfloat16 allowed). Logits are always float32. */
  dtype?: DType;
  /** Default "cpu". */
  device?: Device;
}

/**
 * Cos/sin of rotary embeddings for given position ids: (B, 1, T, D) each, in
 * `dtype`. RotaryEmbedding does it for [B, T] positions; a family may bring
 * its own (Qwen2-VL's multimodal RoPE takes [3, B, T]).
 */
export interface PositionRotary {
  cosSin(positionIds: Tensor, dtype: DType): { cos: Tensor; sin: Tensor };
  dispose(): void;
}

/**
 * Where another family's decoder differs from Llama's while reusing its
 * blocks (Qwen2: biases on q/k/v but not on o_proj; multimodal RoPE).
 */
export interface LlamaVariant {
  /** Bias on q_proj, k_proj and v_proj (default: config attentionBias). */
  qkvBias?: boolean;
  /** Bias on o_proj (default: config attentionBias). */
  outputBias?: boolean;
  /** Replaces the 1-D rotary embedding; the model then needs explicit position ids (owned and disposed by the model). */
  rotary?: PositionRotary;
}

/** Inputs of a causal LM forward pass (Idefics3 adds images). */
export interface CausalLMInputs {
  /** [B, T] int64 token ids. */
  inputIds: Tensor;
  /** [B, past + T] of 0/1 (left padding allowed). Default: all ones. */
  attentionMask?: Tensor;
  /** [B, T] int64. Default: attentionMask.cumsum(-1) - 1 (1 at padding), last T columns, as HF generate; without a mask past..past+T-1. */
  positionIds?: Tensor;
  /** Keys/values of earlier positions; updated in place with the T new ones. */
  cache?: KVCache;
  /** Compute logits for the last k positions only (default: all). */
  logitsToKeep?: number;
}

export interface CausalLMOutput {
  /** [B, T', vocab] float32 (T' = logitsToKeep or T). */
  logits: Tensor;
}

/** HF generate's positions: cumsum(mask) - 1, with 1 at padding; the last T columns. */
export function defaultPositionIds(attentionMask: Tensor | undefined, batch: number, t: number, past: number, device: Device): Tensor {
  return tidy(() => {
    if (!attentionMask) return arange(past, past + t, 1, { device }).view(1, t).expand(batch, t);
    const m = attentionMask.long();
    const pos = m.cumsum(-1).sub(1).maskedFill(m.eq(0), 1);
    return pos.narrow(1, pos.size(1) - t, t);
  });
}

function checkIds(inputIds: Tensor, where: string): [number, number] {
  if (inputIds.ndim !== 2) throw new Error(`${where}: inputIds must be [batch, seq], got [${inputIds.shape.join(", ")}]`);
  if (inputIds.dtype !== "int64") throw new Error(`${where}: inputIds must be int64, got ${inputIds.dtype}`);
  return inputIds.shape as [number, number];
}

export class LlamaAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly dropout: number;

  constructor(
    c: LlamaConfig,
    readonly layerIdx: number,
    o: ModelPlacement = {},
    v: LlamaVariant = {},
  ) {
    super();
    this.numHeads = c.numAttentionHeads;
    this.numKvHeads = c.numKeyValueHeads;
    this.headDim = c.headDim;
    this.dropout = c.attentionDropout;
    const lin = (i: number, out: number, bias: boolean) => new Linear(i, out, { bias, ...o });
    const qkvBias = v.qkvBias ?? c.attentionBias;
    this.q_proj = this.addModule("q_proj", lin(c.hiddenSize, this.numHeads * this.headDim, qkvBias));
    this.k_proj = this.addModule("k_proj", lin(c.hiddenSize, this.numKvHeads * this.headDim, qkvBias));
    this.v_proj = this.addModule("v_proj", lin(c.hiddenSize, this.numKvHeads * this.headDim, qkvBias));
    this.o_proj = this.addModule("o_proj", lin(this.numHeads * this.headDim, c.hiddenSize, v.outputBias ?? c.attentionBias));
  }

  /** x (B, T, C) -> (B, T, C) */
  forward(x: Tensor, cos: Tensor, sin: Tensor, mask: DecoderMask, cache?: KVCache): Tensor {
    return tidy(() => {
      const [b, t] = x.shape;
      const heads = (y: Tensor, n: number) => y.view(b, t, n, this.headDim).transpose(1, 2); // (B, n, T, D)
      const q = applyRotary(heads(this.q_proj.forward(x), this.numHeads), cos, sin);
      let k = applyRotary(heads(this.k_proj.forward(x), this.numKvHeads), cos, sin);
      let v = heads(this.v_proj.forward(x), this.numKvHeads);
      if (cache) ({ keys: k, values: v } = cache.update(this.layerIdx, k, v)); // (B, Hkv, S, D)
      const y = attend(q, k, v, { mask: mask.mask, isCausal: mask.isCausal, dropoutP: this.training ? this.dropout : 0 }); // (B, H, T, D)
      return this.o_proj.forward(y.transpose(1, 2).reshape(b, t, this.numHeads * this.headDim));
    });
  }
}

/** down(act(gate(x)) * up(x)) */
export class LlamaMLP extends Module {
  gate_proj: Linear;
  up_proj: Linear;
  down_proj: Linear;
  private readonly act: Activation;

  constructor(c: LlamaConfig, o: ModelPlacement = {}) {
    super();
    const lin = (i: number, out: number) => new Linear(i, out, { bias: c.mlpBias, ...o });
    this.gate_proj = this.addModule("gate_proj", lin(c.hiddenSize, c.intermediateSize));
    this.up_proj = this.addModule("up_proj", lin(c.hiddenSize, c.intermediateSize));
    this.down_proj = this.addModule("down_proj", lin(c.intermediateSize, c.hiddenSize));
    this.act = activation(c.hiddenAct);
  }

  forward(x: Tensor): Tensor {
    return tidy(() => this.down_proj.forward(this.act(this.gate_proj.forward(x)).mul(this.up_proj.forward(x))));
  }
}

export class LlamaDecoderLayer extends Module {
  self_attn: LlamaAttention;
  mlp: LlamaMLP;
  input_layernorm: RMSNorm;
  post_attention_layernorm: RMSNorm;

  constructor(c: LlamaConfig, layerIdx: number, o: ModelPlacement = {}, v: LlamaVariant = {}) {
    super();
    this.self_attn = this.addModule("self_attn", new LlamaAttention(c, layerIdx, o, v));
    this.mlp = this.addModule("mlp", new LlamaMLP(c, o));
    this.input_layernorm = this.addModule("input_layernorm", new RMSNorm(c.hiddenSize, { eps: c.rmsNormEps, ...o }));
    this.post_attention_layernorm = this.addModule("post_attention_layernorm", new RMSNorm(c.hiddenSize, { eps: c.rmsNormEps, ...o }));
  }

  forward(x: Tensor, cos: Tensor, sin: Tensor, mask: DecoderMask, cache?: KVCache): Tensor {
    return tidy(() => {
      const h = x.add(this.self_attn.forward(this.input_layernorm.forward(x), cos, sin, mask, cache));
      return h.add(this.mlp.forward(this.post_attention_layernorm.forward(h)));
    });
  }
}

export interface DecoderInputs {
  /** (B, T, C) input embeddings. */
  inputsEmbeds: Tensor;
  attentionMask?: Tensor;
  positionIds?: Tensor;
  cache?: KVCache;
}

/** The decoder stack without the LM head (HF LlamaModel; Idefics3's text_model). */
export class LlamaModel extends Module {
  embed_tokens: Embedding;
  layers: ModuleList<LlamaDecoderLayer>;
  norm: RMSNorm;
  readonly config: LlamaConfig;
  readonly rotary: PositionRotary;
  /** A variant's own rotary: position ids must be given, in its layout. */
  private readonly customRotary: boolean;

  constructor(c: LlamaConfig, o: ModelPlacement = {}, v: LlamaVariant = {}) {
    super();
    this.config = c;
    // padding_idx = pad_token_id, as HF's LlamaModel: that row gets no gradient.
    this.embed_tokens = this.addModule("embed_tokens", new Embedding(c.vocabSize, c.hiddenSize, { paddingIdx: c.padTokenId, ...o }));
    this.layers = this.addModule("layers", new ModuleList(Array.from({ length: c.numHiddenLayers }, (_, i) => new LlamaDecoderLayer(c, i, o, v))));
    this.norm = this.addModule("norm", new RMSNorm(c.hiddenSize, { eps: c.rmsNormEps, ...o }));
    this.customRotary = v.rotary !== undefined;
    this.rotary = v.rotary ?? new RotaryEmbedding({ dim: c.headDim, theta: c.ropeTheta, scaling: c.ropeScaling, maxPositionEmbeddings: c.maxPositionEmbeddings });
  }

  protected override onDispose(): void {
    this.rotary.dispose();
  }

  /** A cache sized for this decoder. */
  newCache(opts: KVCacheOptions = {}): KVCache {
    return new KVCache(this.config.numHiddenLayers, opts);
  }

  /** (B, T, C) embeddings -> (B, T, C) final-normed hidden states. */
  forward(inputs: DecoderInputs): Tensor {
    const { inputsEmbeds, attentionMask, cache } = inputs;
    if (inputsEmbeds.ndim !== 3) throw new Error(`LlamaModel: inputsEmbeds must be [batch, seq, hidden], got [${inputsEmbeds.shape.join(", ")}]`);
    const [b, t] = inputsEmbeds.shape;
    if (cache && cache.numLayers !== this.layers.length) throw new Error(`LlamaModel: cache has ${cache.numLayers} layers, the model ${this.layers.length}`);
    const past = cache?.length ?? 0;
    if (cache && past > 0 && cache.batchSize !== b) throw new Error(`LlamaModel: cache holds batch ${cache.batchSize}, inputs have batch ${b}`);
    if (this.customRotary && !inputs.positionIds) throw new Error("LlamaModel: this decoder's rotary embedding needs explicit position ids");
    return tidy(() => {
      const positions = inputs.positionIds ?? defaultPositionIds(attentionMask, b, t, past, inputsEmbeds.device);
      // A variant's rotary checks its own layout (e.g. [3, B, T]); the last dim is T in every layout.
      if (this.customRotary ? positions.size(-1) !== t : positions.ndim !== 2 || positions.size(1) !== t) {
        throw new Error(`LlamaModel: positionIds must be [${this.customRotary ? "..., " : "batch, "}${t}], got [${positions.shape.join(", ")}]`);
      }
      const { cos, sin } = this.rotary.cosSin(positions, inputsEmbeds.dtype);
      const mask = decoderMask(attentionMask, t, past);
      let h = inputsEmbeds;
      for (const layer of this.layers) {
        const next = layer.forward(h, cos, sin, mask, cache);
        if (h !== inputsEmbeds) h.dispose();
        h = next;
      }
      return this.norm.forward(h);
    });
  }
}

/** Logits for the last `keep` positions of hidden (B, T, C), as float32. */
export function lmLogits(lmHead: Linear, hidden: Tensor, keep?: number): Tensor {
  return tidy(() => {
    const t = hidden.size(1);
    if (keep !== undefined && (!Number.isInteger(keep) || keep < 1)) throw new RangeError(`logitsToKeep must be a positive integer, got ${keep}`);
    const h = keep !== undefined && keep < t ? hidden.narrow(1, t - keep, keep) : hidden;
    const logits = lmHead.forward(h);
    return logits.dtype === "float32" ? logits : logits.float();
  });
}

export class LlamaForCausalLM extends Module {
  model: LlamaModel;
  lm_head: Linear;
  readonly config: LlamaConfig;
  readonly defaultLoraTargets = LLAMA_LORA_TARGETS;

  constructor(c: LlamaConfig, o: ModelPlacement = {}) {
    super();
    this.config = c;
    this.model = this.addModule("model", new LlamaModel(c, o));
    // Tied: lm_head.weight is the same tensor as model.embed_tokens.weight (saved once, under the latter).
    const shared = c.tieWordEmbeddings ? this.model.embed_tokens.weight : undefined;
    this.lm_head = this.addModule("lm_head", new Linear(c.hiddenSize, c.vocabSize, { bias: false, ...o, weight: shared }));
  }

  get tiedWordEmbeddings(): boolean {
    return this.config.tieWordEmbeddings;
  }

  newCache(opts: KVCacheOptions = {}): KVCache {
    return this.model.newCache(opts);
  }

  forward(inputs: CausalLMInputs): CausalLMOutput {
    checkIds(inputs.inputIds, "LlamaForCausalLM.forward");
    return tidy(() => {
      const embeds = this.model.embed_tokens.forward(inputs.inputIds);
      const hidden = this.model.forward({ inputsEmbeds: embeds, attentionMask: inputs.attentionMask, positionIds: inputs.positionIds, cache: inputs.cache });
      return { logits: lmLogits(this.lm_head, hidden, inputs.logitsToKeep) };
    });
  }

}

export { checkIds };
