// A Hugging Face tokenizer folder (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json, chat template) loaded for encoding, decoding and
// chat-template rendering. Encoding and decoding are done by
// @huggingface/tokenizers (the JS port of HF's tokenizers); this file reads the
// files, resolves the special tokens and the chat template the way
// transformers does, and reports bad files by name.
import fs from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { ChatTemplate, type ChatMessage } from "./chat_template.js";

export type { ChatMessage, ChatContentPart, ChatRole } from "./chat_template.js";

/** Options of HFTokenizer.encode. */
export interface EncodeOptions {
  /**
   * Let the tokenizer's post-processor add its special tokens (e.g. a Llama
   * BOS). Default false: chat templates already write the ones they want.
   */
  addSpecialTokens?: boolean;
}

/** Options of HFTokenizer.decode. */
export interface DecodeOptions {
  /** Drop special tokens (every id in specialTokenIds) before decoding. Default false. */
  skipSpecialTokens?: boolean;
}

/** Options of HFTokenizer.applyChatTemplate. */
export interface ApplyChatTemplateOptions {
  /** End with the assistant's turn opener (`add_generation_prompt`). Default false. */
  addGenerationPrompt?: boolean;
  /** Which template of a named list to use. Default: the one named "default" (or the only one). */
  templateName?: string;
}

/** The parsed files of a tokenizer folder, for HFTokenizer.fromObjects. */
export interface TokenizerSources {
  /** tokenizer.json's content. */
  tokenizerJson: Record<string, unknown>;
  /** tokenizer_config.json's content, if any. */
  tokenizerConfig?: Record<string, unknown>;
  /** special_tokens_map.json's content, if any. */
  specialTokensMap?: Record<string, unknown>;
  /** Chat templates by name ("default" for the unnamed one). */
  chatTemplates?: Record<string, string>;
  /** Where the chat templates came from, for messages. */
  chatTemplateOrigin?: string;
  /** Where tokenizer.json came from, for messages. Default "tokenizer.json". */
  origin?: string;
  /** Where the special tokens came from, for messages. Default "tokenizer_config.json". */
  configOrigin?: string;
}

type Json = Record<string, unknown>;

/** Reads and parses a JSON object file; errors name the file. `undefined` when optional and absent. */
function readJsonObject(file: string, optional: boolean): Json | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      if (optional) return undefined;
      throw new Error(`tokenizer: ${path.basename(file)} not found: ${file}`);
    }
    throw new Error(`tokenizer: cannot read ${file}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`tokenizer: ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`tokenizer: ${file} must hold a JSON object, found ${Array.isArray(value) ? "an array" : typeof value}`);
  }
  return value as Json;
}

/**
 * A chat_template value (tokenizer_config.json's or chat_template.json's):
 * a string, or HF's list of named templates `[{name, template}]`.
 */
function parseTemplateValue(value: unknown, where: string): Record<string, string> {
  if (typeof value === "string") return { default: value };
  if (Array.isArray(value)) {
    const out: Record<string, string> = {};
    value.forEach((entry, i) => {
      const e = entry as { name?: unknown; template?: unknown } | null;
      if (!e || typeof e.name !== "string" || typeof e.template !== "string") {
        throw new Error(`tokenizer: ${where}[${i}] must be {"name": string, "template": string}`);
      }
      out[e.name] = e.template;
    });
    return out;
  }
  throw new Error(`tokenizer: ${where} must be a string or a list of {name, template}, found ${value === null ? "null" : typeof value}`);
}

/**
 * Finds the chat templates of a folder in transformers' order of precedence:
 * chat_template.jinja (plus named ones in additional_chat_templates/*.jinja),
 * else chat_template.json's "chat_template", else tokenizer_config.json's
 * "chat_template". Returns undefined when there is none.
 */
export function findChatTemplates(dir: string, tokenizerConfig?: Json): { templates: Record<string, string>; origin: string } | undefined {
  const jinjaFile = path.join(dir, "chat_template.jinja");
  if (fs.existsSync(jinjaFile)) {
    const templates: Record<string, string> = { default: fs.readFileSync(jinjaFile, "utf8") };
    const extraDir = path.join(dir, "additional_chat_templates");
    if (fs.existsSync(extraDir)) {
      for (const f of fs.readdirSync(extraDir).sort()) {
        if (f.endsWith(".jinja")) templates[f.slice(0, -".jinja".length)] = fs.readFileSync(path.join(extraDir, f), "utf8");
      }
    }
    return { templates, origin: jinjaFile };
  }
  const jsonFile = path.join(dir, "chat_template.json");
  const fromJson = readJsonObject(jsonFile, true);
  if (fromJson) {
    if (!("chat_template" in fromJson)) throw new Error(`tokenizer: ${jsonFile} has no "chat_template" key`);
    return { templates: parseTemplateValue(fromJson.chat_template, `${jsonFile}: chat_template`), origin: jsonFile };
  }
  if (tokenizerConfig && tokenizerConfig.chat_template != null) {
    const cfgFile = path.join(dir, "tokenizer_config.json");
    return { templates: parseTemplateValue(tokenizerConfig.chat_template, `${cfgFile}: chat_template`), origin: cfgFile };
  }
  return undefined;
}

/** A special-token value: a string, or an AddedToken dict ({content, ...}, possibly with "__type"). */
function tokenContent(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "object" && typeof (value as { content?: unknown }).content === "string") return (value as { content: string }).content;
  throw new Error(`tokenizer: ${where} must be a string or an AddedToken {"content": string, ...}`);
}

const SPECIAL_KEYS = ["bos_token", "eos_token", "unk_token", "pad_token"] as const;

/**
 * @huggingface/tokenizers' ByteLevel decoder checks every token against the
 * list of added tokens with a linear scan, so decoding slows down in
 * proportion to the number of added tokens (0.5 s for 900 tokens with 48k
 * reserved tokens). This gives the top-level ByteLevel decoder the same
 * logic with a Set lookup: runs of ordinary tokens are byte-decoded
 * together, added tokens pass through as their text.
 */
function useSetLookupInByteLevelDecoder(tok: Tokenizer): void {
  // The package's type declarations export only Tokenizer and AddedToken under
  // NodeNext resolution, so the decoder is recognized by its config and method.
  const dec = tok.decoder as
    | (NonNullable<Tokenizer["decoder"]> & { convert_tokens_to_string?: (tokens: string[]) => string })
    | null;
  if (!dec || dec.config?.type !== "ByteLevel" || typeof dec.convert_tokens_to_string !== "function") return;
  const toText = dec.convert_tokens_to_string.bind(dec);
  const added = new Set(dec.added_tokens.map((t: { content: string }) => t.content));
  dec.decode_chain = (tokens: string[]): string[] => {
    const out: string[] = [];
    let run: string[] = [];
    for (const t of tokens) {
      if (added.has(t)) {
        if (run.length > 0) out.push(toText(run));
        run = [];
        out.push(t);
      } else {
        run.push(t);
      }
    }
    if (run.length > 0) out.push(toText(run));
    return out;
  };
}

/**
 * A loaded Hugging Face tokenizer.
 *
 * Special tokens come from tokenizer_config.json, as transformers (>= 4.34)
 * reads them when that file has "added_tokens_decoder"; for older configs
 * without it, special_tokens_map.json's entries override the config's (the
 * legacy path). Beyond transformers: when no pad token is set, padToken falls
 * back to the eos token (what TRL and most trainers do), and a special token
 * that is not in the vocabulary is an error rather than a silently added token.
 */
export class HFTokenizer {
  /** Ids of all special tokens: added tokens marked special, bos/eos/unk/pad and additional_special_tokens. */
  readonly specialTokenIds: Set<number>;
  /** Number of ids: max id + 1 over the model vocabulary and the added tokens. */
  readonly vocabSize: number;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  readonly unkToken: string | undefined;
  /** The pad token; the eos token when the files set none. */
  readonly padToken: string | undefined;
  readonly bosTokenId: number | undefined;
  readonly eosTokenId: number | undefined;
  readonly unkTokenId: number | undefined;
  readonly padTokenId: number | undefined;
  /** additional_special_tokens, as token texts. */
  readonly additionalSpecialTokens: string[];
  /** The chat templates by name ("default" for the unnamed one); empty when the folder has none. */
  readonly chatTemplates: Readonly<Record<string, string>>;
  /** The file the chat templates came from, when there are any. */
  readonly chatTemplateOrigin: string | undefined;

  private readonly tok: Tokenizer;
  private readonly compiled = new Map<string, ChatTemplate>();

  private constructor(src: TokenizerSources) {
    const origin = src.origin ?? "tokenizer.json";
    const configOrigin = src.configOrigin ?? "tokenizer_config.json";
    const tj = src.tokenizerJson;
    if (tj.model === null || typeof tj.model !== "object") throw new Error(`tokenizer: ${origin} has no "model" object`);
    if (tj.added_tokens !== undefined && !Array.isArray(tj.added_tokens)) throw new Error(`tokenizer: ${origin}: "added_tokens" must be a list`);
    const tokenizerJson = { ...tj, added_tokens: tj.added_tokens ?? [] };

    // Special tokens: config first; the special-tokens map overrides it only for legacy configs.
    const config: Json = { ...(src.tokenizerConfig ?? {}) };
    const legacy = !("added_tokens_decoder" in config);
    const chosen: Record<string, unknown> = {};
    const chosenFrom: Record<string, string> = {};
    for (const k of [...SPECIAL_KEYS, "additional_special_tokens"]) {
      if (config[k] != null) {
        chosen[k] = config[k];
        chosenFrom[k] = configOrigin;
      }
      if (legacy && src.specialTokensMap && src.specialTokensMap[k] != null) {
        chosen[k] = src.specialTokensMap[k];
        chosenFrom[k] = "special_tokens_map.json";
      }
    }
    const addl = chosen.additional_special_tokens;
    if (addl !== undefined && !Array.isArray(addl)) throw new Error(`tokenizer: ${chosenFrom.additional_special_tokens}: additional_special_tokens must be a list`);
    this.additionalSpecialTokens = ((addl as unknown[] | undefined) ?? []).map(
      (v, i) => tokenContent(v, `${chosenFrom.additional_special_tokens}: additional_special_tokens[${i}]`)!,
    );

    // The JS tokenizer reads a few config keys (clean-up, additional special tokens); give it plain strings.
    // clean_up_tokenization_spaces: the file's value, else false (the package's default is true, which
    // rewrites " ." as "." and breaks decode(encode(x)) == x; the builder writes false explicitly).
    const jsConfig: Json = {
      ...config,
      additional_special_tokens: this.additionalSpecialTokens,
      clean_up_tokenization_spaces: config.clean_up_tokenization_spaces ?? false,
    };
    for (const k of SPECIAL_KEYS) jsConfig[k] = tokenContent(chosen[k], `${chosenFrom[k]}: ${k}`);
    try {
      this.tok = new Tokenizer(tokenizerJson, jsConfig);
    } catch (e) {
      throw new Error(`tokenizer: ${origin} could not be loaded by @huggingface/tokenizers: ${(e as Error).message}`);
    }

    useSetLookupInByteLevelDecoder(this.tok);

    let maxId = -1;
    for (const id of this.tok.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    const resolve = (k: (typeof SPECIAL_KEYS)[number]): [string | undefined, number | undefined] => {
      const t = jsConfig[k] as string | undefined;
      if (t === undefined) return [undefined, undefined];
      const id = this.tok.token_to_id(t);
      if (id === undefined) throw new Error(`tokenizer: ${chosenFrom[k]}: ${k} ${JSON.stringify(t)} is not in the vocabulary of ${origin}`);
      return [t, id];
    };
    [this.bosToken, this.bosTokenId] = resolve("bos_token");
    [this.eosToken, this.eosTokenId] = resolve("eos_token");
    [this.unkToken, this.unkTokenId] = resolve("unk_token");
    const [pad, padId] = resolve("pad_token");
    this.padToken = pad ?? this.eosToken;
    this.padTokenId = padId ?? this.eosTokenId;

    const special = new Set<number>();
    for (const [id, t] of this.tok.get_added_tokens_decoder()) if (t.special) special.add(id);
    for (const id of [this.bosTokenId, this.eosTokenId, this.unkTokenId, padId]) if (id !== undefined) special.add(id);
    for (const t of this.additionalSpecialTokens) {
      const id = this.tok.token_to_id(t);
      if (id === undefined) throw new Error(`tokenizer: ${chosenFrom.additional_special_tokens}: additional special token ${JSON.stringify(t)} is not in the vocabulary of ${origin}`);
      special.add(id);
    }
    this.specialTokenIds = special;

    this.chatTemplates = Object.freeze({ ...(src.chatTemplates ?? {}) });
    this.chatTemplateOrigin = src.chatTemplateOrigin;
  }

  /**
   * Loads a tokenizer folder: tokenizer.json (required), tokenizer_config.json
   * and special_tokens_map.json (optional), and the chat template (see
   * findChatTemplates). Missing or malformed files are errors naming the path.
   */
  static async fromDir(dir: string): Promise<HFTokenizer> {
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`tokenizer: folder not found: ${dir}`);
    const tokenizerFile = path.join(dir, "tokenizer.json");
    const configFile = path.join(dir, "tokenizer_config.json");
    const tokenizerJson = readJsonObject(tokenizerFile, false)!;
    const tokenizerConfig = readJsonObject(configFile, true);
    const specialTokensMap = readJsonObject(path.join(dir, "special_tokens_map.json"), true);
    const found = findChatTemplates(dir, tokenizerConfig);
    return new HFTokenizer({
      tokenizerJson,
      tokenizerConfig,
      specialTokensMap,
      chatTemplates: found?.templates,
      chatTemplateOrigin: found?.origin,
      origin: tokenizerFile,
      configOrigin: configFile,
    });
  }

  /** Builds a tokenizer from already-parsed file contents. */
  static fromObjects(src: TokenizerSources): HFTokenizer {
    return new HFTokenizer(src);
  }

  /** Token ids of `text`. Added tokens in the text (e.g. "<image>") become their single ids. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== "string") throw new Error(`tokenizer.encode: expected a string, got ${typeof text}`);
    return this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).ids;
  }

  /** Text of `ids` (any integer array: number[], Int32Array, BigInt64Array, ...). An empty list gives "". */
  decode(ids: ArrayLike<number | bigint>, opts: DecodeOptions = {}): string {
    const list: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = Number(ids[i]);
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.tok.id_to_token(id) === undefined) {
        throw new Error(`tokenizer.decode: id ${String(ids[i])} at position ${i} is not in the vocabulary (size ${this.vocabSize})`);
      }
      if (opts.skipSpecialTokens && this.specialTokenIds.has(id)) continue;
      list.push(id);
    }
    if (list.length === 0) return "";
    return this.tok.decode(list, { skip_special_tokens: false });
  }

  /** The id of a token (its vocabulary form, e.g. "Ġthe" for " the" in a byte-level BPE), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  /** The vocabulary form of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /**
   * Renders `messages` with the folder's chat template, passing bos_token,
   * eos_token, pad_token, unk_token, additional_special_tokens and
   * add_generation_prompt as transformers does.
   */
  applyChatTemplate(messages: readonly ChatMessage[], opts: ApplyChatTemplateOptions = {}): string {
    return this.chatTemplate(opts.templateName).render(messages, {
      bosToken: this.bosToken,
      eosToken: this.eosToken,
      padToken: this.padToken,
      unkToken: this.unkToken,
      addGenerationPrompt: opts.addGenerationPrompt ?? false,
      extra: { additional_special_tokens: this.additionalSpecialTokens },
    });
  }

  /** The compiled template named `name` (see applyChatTemplate's templateName). */
  private chatTemplate(name?: string): ChatTemplate {
    const names = Object.keys(this.chatTemplates);
    if (names.length === 0) {
      throw new Error(
        "tokenizer: no chat template: looked for chat_template.jinja, chat_template.json and tokenizer_config.json's chat_template",
      );
    }
    let chosen = name;
    if (chosen === undefined) {
      if ("default" in this.chatTemplates) chosen = "default";
      else if (names.length === 1) chosen = names[0];
      else throw new Error(`tokenizer: ${this.chatTemplateOrigin} has several chat templates and none named "default"; pick one of: ${names.join(", ")}`);
    }
    const source = this.chatTemplates[chosen];
    if (source === undefined) throw new Error(`tokenizer: no chat template named ${JSON.stringify(chosen)} in ${this.chatTemplateOrigin}; have: ${names.join(", ")}`);
    let t = this.compiled.get(chosen);
    if (!t) this.compiled.set(chosen, (t = new ChatTemplate(source, `${this.chatTemplateOrigin} (template ${JSON.stringify(chosen)})`)));
    return t;
  }
}
