// A small but real Qwen2-format tokenizer for randomly initialized Qwen2-VL /
// Qwen2.5-VL models: tokenizer.json with Qwen2's pipeline (NFC normalizer,
// Qwen2's split pattern, byte-level BPE without its own regex, byte-level
// decoder), merges learned from the project's moderation-domain corpus,
// Qwen's special tokens appended after the BPE vocabulary in Qwen's order,
// tokenizer_config.json as the hub's Qwen2-VL-Instruct files have it
// (Qwen2Tokenizer, eos <|im_end|>, pad <|endoftext|>, no bos / unk) and the
// chat template, so that transformers' AutoTokenizer / AutoProcessor load the
// folder too.
//
// Vocabulary ids: 0..255 the byte characters (code-point order of GPT-2's
// byte-to-unicode table), then one token per merge, then <|endoftext|>,
// <|im_start|>, <|im_end|>, <|object_ref_start|>, <|object_ref_end|>,
// <|box_start|>, <|box_end|>, <|quad_start|>, <|quad_end|>,
// <|vision_start|>, <|vision_end|>, <|vision_pad|>, <|image_pad|>,
// <|video_pad|>. (The real Qwen vocabulary has 151643 BPE tokens before the
// same specials; a model's vocab_size may exceed the tokenizer, as Qwen's
// 151936 does.) Merges are learned over GPT-2's pre-tokenizer split (the
// shared trainer); encoding uses Qwen2's split, which only changes which
// merges apply, not whether the result is valid.
import fs from "node:fs";
import path from "node:path";

import { writeTextFileAtomic } from "../../io/atomic.js";
import { byteToUnicodeTable, trainByteLevelBpe } from "../../io/tokenizer_builder.js";
import { TOKENIZER_CORPUS } from "../../io/tokenizer_corpus.js";

/** Qwen2's pre-tokenizer split pattern (tokenizer.json's Split regex). */
export const QWEN2_SPLIT_PATTERN = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

/** Qwen's special tokens, in their id order. */
export const QWEN_SPECIAL_TOKENS: readonly string[] = [
  "<|endoftext|>",
  "<|im_start|>",
  "<|im_end|>",
  "<|object_ref_start|>",
  "<|object_ref_end|>",
  "<|box_start|>",
  "<|box_end|>",
  "<|quad_start|>",
  "<|quad_end|>",
  "<|vision_start|>",
  "<|vision_end|>",
  "<|vision_pad|>",
  "<|image_pad|>",
  "<|video_pad|>",
];

/**
 * A chat template in Qwen2-VL-Instruct's format, written for this project:
 * a default system turn ("You are a helpful assistant.") when the first
 * message is not a system message, "<|im_start|>{role}\n...<|im_end|>\n" per
 * turn, "<|vision_start|><|image_pad|><|vision_end|>" per image part (with
 * `add_vision_id`, "Picture k: " before it), text parts verbatim, and
 * "<|im_start|>assistant\n" as the generation prompt. For text and image
 * parts it renders what Qwen2-VL-Instruct's own template renders.
 */
export const QWEN2_VL_CHAT_TEMPLATE = [
  "{% set ns = namespace(images=0) %}",
  "{% for m in messages %}",
  "{% if loop.first and m['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}",
  "<|im_start|>{{ m['role'] }}\n",
  "{% if m['content'] is string %}{{ m['content'] }}",
  "{% else %}{% for c in m['content'] %}",
  "{% if c['type'] == 'image' %}{% set ns.images = ns.images + 1 %}",
  "{% if add_vision_id %}Picture {{ ns.images }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>",
  "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}",
  "{% endfor %}{% endif %}<|im_end|>\n",
  "{% endfor %}",
  "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
].join("");

export interface QwenTokenizerBuildOptions {
  /** BPE merges to learn (fewer if the corpus runs out of repeated pairs). Default 1000. */
  numMerges?: number;
  /** tokenizer_config.json's model_max_length. Default 32768. */
  modelMaxLength?: number;
  /** Training text. Default the project's TOKENIZER_CORPUS. */
  corpus?: string;
}

export interface QwenTokenizerInfo {
  /** Ids in the tokenizer (max id + 1). */
  vocabSize: number;
  /** Id of every special token, by its text. */
  specialTokenIds: Record<string, number>;
  eosTokenId: number;
  padTokenId: number;
  numMerges: number;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";
const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };

/** Builds tokenizer.json, tokenizer_config.json and chat_template.jinja in memory (deterministic). */
export function buildQwenTokenizerFiles(opts: QwenTokenizerBuildOptions = {}): { files: Record<string, string>; info: QwenTokenizerInfo } {
  const numMerges = opts.numMerges ?? 1000;
  if (!Number.isInteger(numMerges) || numMerges < 0) throw new Error(`Qwen tokenizer builder: numMerges must be a non-negative integer, got ${numMerges}`);
  const vocab = new Map<string, number>();
  for (const ch of [...byteToUnicodeTable()].sort()) vocab.set(ch, vocab.size);
  const merges = trainByteLevelBpe(opts.corpus ?? TOKENIZER_CORPUS, { numMerges });
  for (const [a, b] of merges) if (!vocab.has(a + b)) vocab.set(a + b, vocab.size);
  const specialTokenIds = Object.fromEntries(QWEN_SPECIAL_TOKENS.map((t, i) => [t, vocab.size + i]));
  const vocabSize = vocab.size + QWEN_SPECIAL_TOKENS.length;

  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: QWEN_SPECIAL_TOKENS.map((t) => ({ id: specialTokenIds[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: "NFC" },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [{ type: "Split", pattern: { Regex: QWEN2_SPLIT_PATTERN }, behavior: "Isolated", invert: false }, byteLevel],
    },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const tokenDict = (content: string) => ({ content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true });
  const tokenizerConfig = {
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(QWEN_SPECIAL_TOKENS.map((t) => [String(specialTokenIds[t]), tokenDict(t)])),
    additional_special_tokens: QWEN_SPECIAL_TOKENS.slice(1),
    bos_token: null,
    chat_template: QWEN2_VL_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: "<|im_end|>",
    errors: "replace",
    model_max_length: opts.modelMaxLength ?? 32768,
    pad_token: "<|endoftext|>",
    split_special_tokens: false,
    tokenizer_class: "Qwen2Tokenizer",
    unk_token: null,
  };
  return {
    files: {
      "tokenizer.json": json(tokenizerJson),
      "tokenizer_config.json": json(tokenizerConfig),
      "chat_template.jinja": QWEN2_VL_CHAT_TEMPLATE,
    },
    info: {
      vocabSize,
      specialTokenIds,
      eosTokenId: specialTokenIds["<|im_end|>"],
      padTokenId: specialTokenIds["<|endoftext|>"],
      numMerges: merges.length,
    },
  };
}

/** Writes the tokenizer files into `dir` (created if needed), each atomically. */
export function writeQwenTokenizerFiles(dir: string, opts: QwenTokenizerBuildOptions = {}): QwenTokenizerInfo {
  const built = buildQwenTokenizerFiles(opts);
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(built.files)) writeTextFileAtomic(path.join(dir, name), text);
  return built.info;
}
