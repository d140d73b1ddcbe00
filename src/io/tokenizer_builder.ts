// Writes a small but real Hugging Face tokenizer for randomly initialized
// test/demo models: a byte-level BPE tokenizer.json (the GPT-2 / SmolLM2
// family SmolVLM uses) whose merges are learned from an embedded
// moderation-domain corpus, plus tokenizer_config.json,
// special_tokens_map.json and chat_template.json, in the layout transformers
// writes, so that Python's AutoTokenizer / AutoProcessor load the folder too.
//
// Special tokens follow SmolVLM-Instruct: bos "<|im_start|>", eos
// "<end_of_utterance>" (each chat turn ends with it, and generation stops on
// it), pad "<|im_end|>", unk "<|endoftext|>"; image tokens
// "<fake_token_around_image>", "<image>", "<global-img>" and
// "<row_R_col_C>" for the tiles of a split image.
//
// Vocabulary layout (ids): 0 "<|endoftext|>", 1 "<|im_start|>", 2
// "<|im_end|>" (in the BPE vocab and added as special tokens, as SmolLM2
// has them); 3..258 the 256 byte characters in code-point order (GPT-2's
// order); then one token per merge; then the added special tokens
// "<fake_token_around_image>", "<image>", the "<row_R_col_C>" tokens (row
// major), "<global-img>", "<end_of_utterance>"; then, if `vocabSize` asks
// for more, "<|reserved_special_token_K|>" tokens up to exactly vocabSize.
import fs from "node:fs";
import path from "node:path";
import { writeTextFileAtomic } from "./atomic.js";
import { SMOLVLM_CHAT_TEMPLATE } from "./chat_template.js";
import { TOKENIZER_CORPUS } from "./tokenizer_corpus.js";

// ---- The BPE trainer ----
// A small, deterministic byte-level BPE trainer (GPT-2 style), used only to
// learn this tiny tokenizer's merges. Real checkpoints bring their own
// merges; encoding always goes through @huggingface/tokenizers.
//
// Text is split with the GPT-2 pre-tokenizer pattern (the one HF's ByteLevel
// pre-tokenizer applies with use_regex: true), each piece's UTF-8 bytes are
// mapped to printable characters with GPT-2's byte-to-unicode table, and the
// most frequent adjacent pair is merged repeatedly. Ties are broken by the
// pair's text (code-unit order), so the result depends only on the input.

/** GPT-2's pre-tokenizer pattern, as HF's ByteLevel pre-tokenizer uses it (global: use with matchAll). */
const GPT2_PRETOKENIZE_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's byte-to-character table: entry b is the character standing for
 * byte b. Printable Latin-1 bytes stand for themselves; the others (control
 * characters, space, 127-160, 173) get U+0100 upwards in byte order, so a
 * space is "Ġ" (U+0120) and a newline "Ċ" (U+010A).
 */
export function byteToUnicodeTable(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const table = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable(b) ? b : next++);
  return table;
}

const BYTE_CHARS = byteToUnicodeTable();
const ENCODER = new TextEncoder();

/** The byte-level form of a piece of text: one table character per UTF-8 byte. */
export function toByteLevel(text: string): string {
  let out = "";
  for (const b of ENCODER.encode(text)) out += BYTE_CHARS[b];
  return out;
}

/** Options of trainByteLevelBpe. */
export interface BpeTrainOptions {
  /** Stop after this many merges. */
  numMerges: number;
  /** Stop early when the most frequent pair occurs fewer times than this. Default 2. */
  minFrequency?: number;
}

/** A merge: the two symbols joined, left then right. */
export type BpeMerge = [string, string];

// Pair keys join the two symbols with a space, which no byte-level symbol contains (space is "Ġ").
const SEP = " ";

/**
 * Learns up to `numMerges` merges from `text`. Returns them in the order
 * learned (the order HF's BPE model ranks them).
 */
export function trainByteLevelBpe(text: string, opts: BpeTrainOptions): BpeMerge[] {
  const minFrequency = opts.minFrequency ?? 2;
  if (!Number.isInteger(opts.numMerges) || opts.numMerges < 0) throw new Error(`trainByteLevelBpe: numMerges must be a non-negative integer, got ${opts.numMerges}`);

  const counts = new Map<string, number>();
  for (const m of text.matchAll(GPT2_PRETOKENIZE_PATTERN)) {
    const w = toByteLevel(m[0]);
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  const keys = [...counts.keys()].sort();
  // Every byte-level character is a single UTF-16 unit (all are below U+0200).
  const words = keys.map((k) => k.split(""));
  const freqs = keys.map((k) => counts.get(k)!);

  const pairCount = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>();
  const account = (i: number, sign: 1 | -1) => {
    const w = words[i];
    for (let j = 0; j + 1 < w.length; j++) {
      const key = w[j] + SEP + w[j + 1];
      const c = (pairCount.get(key) ?? 0) + sign * freqs[i];
      if (c === 0) pairCount.delete(key);
      else pairCount.set(key, c);
      if (sign > 0) {
        let s = pairWords.get(key);
        if (!s) pairWords.set(key, (s = new Set()));
        s.add(i);
      }
    }
  };
  for (let i = 0; i < words.length; i++) account(i, 1);

  const merges: BpeMerge[] = [];
  while (merges.length < opts.numMerges) {
    let best: string | undefined;
    let bestCount = 0;
    for (const [key, c] of pairCount) {
      if (c > bestCount || (c === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = c;
      }
    }
    if (best === undefined || bestCount < minFrequency) break;
    const [a, b] = best.split(SEP) as BpeMerge;
    merges.push([a, b]);
    const joined = a + b;
    // Word sets may hold words that lost the pair already: merging them is a no-op.
    for (const i of pairWords.get(best) ?? []) {
      account(i, -1);
      const w = words[i];
      const out: string[] = [];
      for (let j = 0; j < w.length; j++) {
        if (j + 1 < w.length && w[j] === a && w[j + 1] === b) {
          out.push(joined);
          j++;
        } else {
          out.push(w[j]);
        }
      }
      words[i] = out;
      account(i, 1);
    }
    pairWords.delete(best);
  }
  return merges;
}

// ---- The tokenizer files ----

/** Merges learned from the default corpus by default; with it the vocabulary is ~1.3k tokens. */
export const DEFAULT_NUM_MERGES = 1000;

/** Options of writeTokenizerFiles / buildTokenizerFiles. */
export interface TokenizerBuildOptions {
  /**
   * Pad the vocabulary with "<|reserved_special_token_K|>" tokens to exactly
   * this many ids (e.g. to match a model's embedding rows). Default: no
   * padding. Must be at least the unpadded size.
   */
  vocabSize?: number;
  /** Number of BPE merges to learn (fewer if the corpus runs out of repeated pairs). Default DEFAULT_NUM_MERGES. */
  numMerges?: number;
  /** Largest tile row R for which a "<row_R_col_C>" token exists. Default 4. */
  maxImageRows?: number;
  /** Largest tile column C for which a "<row_R_col_C>" token exists. Default 4. */
  maxImageCols?: number;
  /** tokenizer_config.json's model_max_length. Default 8192 (SmolVLM's). */
  modelMaxLength?: number;
  /** Training text. Default TOKENIZER_CORPUS. */
  corpus?: string;
}

/** What a built tokenizer's ids are. */
export interface BuiltTokenizerInfo {
  /** Number of ids, added tokens and padding included (max id + 1). */
  vocabSize: number;
  /** Id of every named special token (the reserved padding tokens left out), by its text. */
  specialTokenIds: Record<string, number>;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId: number;
  /** Merges actually learned. */
  numMerges: number;
}

/** The texts of the four files, by file name, and the ids. */
export interface BuiltTokenizerFiles {
  files: Record<"tokenizer.json" | "tokenizer_config.json" | "special_tokens_map.json" | "chat_template.json", string>;
  info: BuiltTokenizerInfo;
}

export const BOS_TOKEN = "<|im_start|>";
export const EOS_TOKEN = "<end_of_utterance>";
export const PAD_TOKEN = "<|im_end|>";
export const UNK_TOKEN = "<|endoftext|>";
export const IMAGE_TOKEN = "<image>";
export const FAKE_IMAGE_TOKEN = "<fake_token_around_image>";
export const GLOBAL_IMAGE_TOKEN = "<global-img>";
/** The tile marker for row `r`, column `c` (1-based), as SmolVLM spells it. */
export const imageTileToken = (r: number, c: number): string => `<row_${r}_col_${c}>`;

const mergeCache = new Map<string, Map<number, BpeMerge[]>>();

/** trainByteLevelBpe, remembered per (corpus, numMerges): building is deterministic. */
function cachedMerges(corpus: string, numMerges: number): BpeMerge[] {
  let byCount = mergeCache.get(corpus);
  if (!byCount) mergeCache.set(corpus, (byCount = new Map()));
  let merges = byCount.get(numMerges);
  if (!merges) byCount.set(numMerges, (merges = trainByteLevelBpe(corpus, { numMerges })));
  return merges;
}

function positiveInt(name: string, v: number | undefined, dflt: number, min = 1): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < min) throw new Error(`tokenizer builder: ${name} must be an integer >= ${min}, got ${v}`);
  return x;
}

/** An added-token record as tokenizer.json lists it. */
function addedTokenJson(id: number, content: string) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** An AddedToken as tokenizer_config.json / special_tokens_map.json write it (keys sorted, as transformers does). */
function addedTokenDict(content: string, special?: boolean) {
  const d: Record<string, unknown> = { content, lstrip: false, normalized: false, rstrip: false, single_word: false };
  if (special !== undefined) d.special = special;
  return d;
}

/** Returns `obj` with its keys in sorted order (transformers saves its JSON files with sort_keys=True). */
function sortedKeys<T extends Record<string, unknown>>(obj: T): T {
  return Object.fromEntries(Object.keys(obj).sort().map((k) => [k, obj[k]])) as T;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";

const VOCAB_PLACEHOLDER = "@@vocab@@";

/**
 * Puts the BPE vocabulary into tokenizer.json's text in id order, as HF
 * writes it. (A JS object would list integer-like keys such as "0" or "12"
 * first, whatever their ids.)
 */
function withVocab(text: string, vocab: Map<string, number>): string {
  const entries = [...vocab].map(([t, id]) => `      ${JSON.stringify(t)}: ${id}`);
  const block = entries.length === 0 ? "{}" : `{\n${entries.join(",\n")}\n    }`;
  const mark = JSON.stringify(VOCAB_PLACEHOLDER);
  if (text.indexOf(mark) < 0 || text.indexOf(mark) !== text.lastIndexOf(mark)) throw new Error("tokenizer builder: vocab placeholder not found exactly once");
  return text.replace(mark, () => block);
}

/** Builds the four files in memory (pure and deterministic); see writeTokenizerFiles. */
export function buildTokenizerFiles(opts: TokenizerBuildOptions = {}): BuiltTokenizerFiles {
  const numMergesWanted = positiveInt("numMerges", opts.numMerges, DEFAULT_NUM_MERGES, 0);
  const maxRows = positiveInt("maxImageRows", opts.maxImageRows, 4);
  const maxCols = positiveInt("maxImageCols", opts.maxImageCols, 4);
  const modelMaxLength = positiveInt("modelMaxLength", opts.modelMaxLength, 8192);
  const corpus = opts.corpus ?? TOKENIZER_CORPUS;

  // The BPE model's vocabulary, in id order.
  const vocab = new Map<string, number>();
  const add = (t: string) => {
    if (!vocab.has(t)) vocab.set(t, vocab.size);
  };
  const leading = [UNK_TOKEN, BOS_TOKEN, PAD_TOKEN];
  leading.forEach(add);
  [...byteToUnicodeTable()].sort().forEach(add);
  const merges = cachedMerges(corpus, numMergesWanted);
  for (const [a, b] of merges) add(a + b);

  // Added special tokens after the model's vocabulary.
  const tail = [FAKE_IMAGE_TOKEN, IMAGE_TOKEN];
  for (let r = 1; r <= maxRows; r++) for (let c = 1; c <= maxCols; c++) tail.push(imageTileToken(r, c));
  tail.push(GLOBAL_IMAGE_TOKEN, EOS_TOKEN);
  const named: Array<[string, number]> = leading.map((t) => [t, vocab.get(t)!]);
  tail.forEach((t, i) => named.push([t, vocab.size + i]));
  const natural = vocab.size + tail.length;
  const vocabSize = opts.vocabSize ?? natural;
  if (!Number.isInteger(vocabSize) || vocabSize < natural) {
    throw new Error(
      `tokenizer builder: vocabSize ${opts.vocabSize} is smaller than the ${natural} ids the tokenizer needs ` +
        `(3 leading specials + 256 bytes + ${merges.length} merges + ${tail.length} image/turn tokens); raise vocabSize or lower numMerges`,
    );
  }
  const added: Array<[string, number]> = [...named];
  for (let k = 0; natural + k < vocabSize; k++) added.push([`<|reserved_special_token_${k}|>`, natural + k]);

  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added.map(([t, id]) => addedTokenJson(id, t)),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: VOCAB_PLACEHOLDER, // written in id order below
      // "left right" strings: the form every tokenizers version reads (byte-level symbols never contain a space).
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };

  const additional = tail.filter((t) => t !== EOS_TOKEN);
  const addedTokensDecoder: Record<string, unknown> = {};
  for (const [t, id] of added) addedTokensDecoder[String(id)] = addedTokenDict(t, true);
  const tokenizerConfig = sortedKeys({
    add_bos_token: false,
    add_eos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: addedTokensDecoder,
    additional_special_tokens: additional,
    bos_token: BOS_TOKEN,
    chat_template: SMOLVLM_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: EOS_TOKEN,
    model_max_length: modelMaxLength,
    pad_token: PAD_TOKEN,
    tokenizer_class: "GPT2Tokenizer",
    unk_token: UNK_TOKEN,
  });
  const specialTokensMap = sortedKeys({
    additional_special_tokens: additional,
    bos_token: addedTokenDict(BOS_TOKEN),
    eos_token: addedTokenDict(EOS_TOKEN),
    pad_token: addedTokenDict(PAD_TOKEN),
    unk_token: addedTokenDict(UNK_TOKEN),
  });

  const ids = Object.fromEntries(named);
  return {
    files: {
      "tokenizer.json": withVocab(json(tokenizerJson), vocab),
      "tokenizer_config.json": json(tokenizerConfig),
      "special_tokens_map.json": json(specialTokensMap),
      "chat_template.json": json({ chat_template: SMOLVLM_CHAT_TEMPLATE }),
    },
    info: {
      vocabSize,
      specialTokenIds: ids,
      bosTokenId: ids[BOS_TOKEN],
      eosTokenId: ids[EOS_TOKEN],
      padTokenId: ids[PAD_TOKEN],
      numMerges: merges.length,
    },
  };
}

/**
 * Writes tokenizer.json, tokenizer_config.json, special_tokens_map.json and
 * chat_template.json into `dir` (created if needed; other files in it are
 * left alone), each file atomically. Same options, same bytes.
 */
export async function writeTokenizerFiles(dir: string, opts: TokenizerBuildOptions = {}): Promise<BuiltTokenizerInfo> {
  const built = buildTokenizerFiles(opts);
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(built.files)) writeTextFileAtomic(path.join(dir, name), text);
  return built.info;
}
