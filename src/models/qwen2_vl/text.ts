// The Qwen2 decoder of Qwen2-VL / Qwen2.5-VL (transformers' Qwen2VLTextModel /
// Qwen2_5_VLTextModel) as a variant of the shared Llama decoder: the same
// pre-norm blocks, RMSNorm, grouped-query attention and SwiGLU MLP, with
// biases on q/k/v but not on o_proj, and the multimodal rotary embedding
// (position ids [3, B, T]). Module paths: embed_tokens, layers.N.self_attn.{q,k,v,o}_proj,
// layers.N.mlp.{gate,up,down}_proj, layers.N.{input,post_attention}_layernorm, norm.
import type { LlamaConfig } from "../configs.js";
import { LlamaModel, type ModelPlacement } from "../llama.js";
import type { QwenTextConfig } from "./config.js";
import { MultimodalRotaryEmbedding } from "./rotary.js";

/** The Llama-shaped view of a Qwen2 text config (what LlamaModel reads). */
export function qwenTextAsLlama(t: QwenTextConfig, tieWordEmbeddings: boolean): LlamaConfig {
  return {
    modelType: "llama",
    vocabSize: t.vocabSize,
    hiddenSize: t.hiddenSize,
    intermediateSize: t.intermediateSize,
    numHiddenLayers: t.numHiddenLayers,
    numAttentionHeads: t.numAttentionHeads,
    numKeyValueHeads: t.numKeyValueHeads,
    headDim: t.headDim,
    hiddenAct: t.hiddenAct,
    maxPositionEmbeddings: t.maxPositionEmbeddings,
    initializerRange: t.initializerRange,
    rmsNormEps: t.rmsNormEps,
    ropeTheta: t.ropeTheta,
    ropeScaling: null,
    attentionBias: true,
    attentionDropout: t.attentionDropout,
    mlpBias: false,
    tieWordEmbeddings,
    bosTokenId: t.bosTokenId,
    eosTokenId: t.eosTokenId,
    padTokenId: t.padTokenId,
    raw: {},
  };
}

/** A Qwen2 decoder (embed_tokens, layers, norm): LlamaModel with Qwen2's biases and M-RoPE. */
export function buildQwenDecoder(t: QwenTextConfig, tieWordEmbeddings: boolean, o: ModelPlacement = {}): LlamaModel {
  const rotary = new MultimodalRotaryEmbedding({ dim: t.headDim, theta: t.ropeTheta, mropeSection: t.mropeSection });
  return new LlamaModel(qwenTextAsLlama(t, tieWordEmbeddings), o, { qkvBias: true, outputBias: false, rotary });
}
