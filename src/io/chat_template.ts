// Chat templates: Jinja programs shipped with a Hugging Face tokenizer that
// turn a list of chat messages into the prompt text the model was trained on.
// Rendering uses @huggingface/jinja, which mirrors the environment
// transformers gives these templates (trim_blocks, lstrip_blocks, a
// `raise_exception` global); the variables passed are those transformers
// passes: `messages`, `add_generation_prompt`, and the special tokens
// (`bos_token`, `eos_token`, `pad_token`, `unk_token`, ...). The
// `raise_exception(message)` global is the package's own.
import { Template } from "@huggingface/jinja";

/** The roles a message may have. */
export type ChatRole = "system" | "user" | "assistant";

/** A text part of a multimodal message. */
export interface ChatTextPart {
  type: "text";
  text: string;
}

/**
 * An image placeholder in a multimodal message. The pixels travel separately
 * (the processor expands the placeholder into image tokens); templates only
 * see `{type: "image"}`.
 */
export interface ChatImagePart {
  type: "image";
}

export type ChatContentPart = ChatTextPart | ChatImagePart;

/**
 * One chat message in Hugging Face's format: `content` is either plain text or
 * a list of parts (the multimodal form used by VLM processors).
 */
export interface ChatMessage {
  role: ChatRole;
  content: string | ChatContentPart[];
}

/** The variables a template sees besides `messages`. */
export interface ChatTemplateVariables {
  /** `bos_token`; templates that use it render "" when absent. */
  bosToken?: string;
  /** `eos_token`. */
  eosToken?: string;
  /** `pad_token`. */
  padToken?: string;
  /** `unk_token`. */
  unkToken?: string;
  /** `add_generation_prompt`: end the prompt with the assistant's turn opener. Default false. */
  addGenerationPrompt?: boolean;
  /** Further variables, passed to the template as given (e.g. `additional_special_tokens`). */
  extra?: Record<string, unknown>;
}

/**
 * The SmolVLM / Idefics3 chat format, written for this project. For messages
 * whose content is a list of parts it renders exactly what
 * SmolVLM-Instruct's own template renders:
 *
 *     <|im_start|>User:<image>What is this?<end_of_utterance>\nAssistant: A cat.<end_of_utterance>\nAssistant:
 *
 * - `<|im_start|>` once, at the very start (not per turn);
 * - each turn is the capitalized role, then `:` directly when the first part
 *   is an image and `: ` otherwise, then the parts in order (`<image>` for an
 *   image, the text for a text part), then `<end_of_utterance>` and a newline;
 * - with add_generation_prompt, a final `Assistant:` with no trailing space.
 *
 * Beyond the original: plain-string content renders as one text part (the
 * original renders nothing for it), an empty part list renders `: `, and an
 * unknown part type raises instead of vanishing.
 */
export const SMOLVLM_CHAT_TEMPLATE = [
  "{{- '<|im_start|>' -}}",
  "{%- for message in messages -%}",
  "{%- set content = message['content'] -%}",
  "{{- message['role'] | capitalize -}}",
  "{%- if content is string -%}",
  "{{- ': ' + content -}}",
  "{%- else -%}",
  "{%- if content | length > 0 and content[0]['type'] == 'image' -%}{{- ':' -}}{%- else -%}{{- ': ' -}}{%- endif -%}",
  "{%- for part in content -%}",
  "{%- if part['type'] == 'image' -%}{{- '<image>' -}}",
  "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}",
  "{%- else -%}{{- raise_exception('SmolVLM chat template: unsupported content part type ' ~ part['type']) -}}",
  "{%- endif -%}",
  "{%- endfor -%}",
  "{%- endif -%}",
  "{{- '<end_of_utterance>\\n' -}}",
  "{%- endfor -%}",
  "{%- if add_generation_prompt -%}{{- 'Assistant:' -}}{%- endif -%}",
].join("\n");

/** Copies only JSON-like values (what a template can use); drops functions, buffers and class instances. */
function plainCopy(value: unknown): unknown {
  if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
  if (Array.isArray(value)) return value.map(plainCopy);
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined || typeof v === "function") continue;
      if (v !== null && typeof v === "object" && !Array.isArray(v) && Object.getPrototypeOf(v) !== Object.prototype) continue;
      out[k] = plainCopy(v);
    }
    return out;
  }
  return undefined;
}

/**
 * Checks the shape of chat messages, naming the first bad one:
 * `messages[i].role` a non-empty string, `messages[i].content` a string or a
 * list of `{type: "text", text: string}` / `{type: "image"}` parts.
 */
export function validateChatMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages)) throw new Error(`chat messages: expected an array, got ${typeof messages}`);
  messages.forEach((m, i) => {
    const where = `chat messages[${i}]`;
    if (m === null || typeof m !== "object") throw new Error(`${where}: expected an object {role, content}`);
    if (typeof m.role !== "string" || m.role.length === 0) throw new Error(`${where}.role: expected a non-empty string`);
    if (typeof m.content === "string") return;
    if (!Array.isArray(m.content)) throw new Error(`${where}.content: expected a string or an array of parts`);
    const parts: readonly unknown[] = m.content;
    parts.forEach((p, j) => {
      const pw = `${where}.content[${j}]`;
      if (p === null || typeof p !== "object") throw new Error(`${pw}: expected {type: "text", text} or {type: "image"}`);
      const part = p as { type?: unknown; text?: unknown };
      if (part.type === "text") {
        if (typeof part.text !== "string") throw new Error(`${pw}.text: expected a string`);
      } else if (part.type !== "image") {
        throw new Error(`${pw}.type: expected "text" or "image", got ${JSON.stringify(part.type)}`);
      }
    });
  });
}

/** A parsed chat template; parse once, render many times. */
export class ChatTemplate {
  private readonly template: Template;

  /**
   * @param source the Jinja text.
   * @param origin where it came from (a file path or a name), used in error messages.
   */
  constructor(
    readonly source: string,
    readonly origin = "chat template",
  ) {
    if (typeof source !== "string") throw new Error(`${origin}: chat template must be a string, got ${typeof source}`);
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new Error(`${origin}: chat template does not parse: ${(e as Error).message}`);
    }
  }

  /** Renders `messages`; errors (bad messages, template errors, raise_exception) name the origin. */
  render(messages: readonly ChatMessage[], vars: ChatTemplateVariables = {}): string {
    validateChatMessages(messages);
    const context: Record<string, unknown> = {
      ...(plainCopy(vars.extra ?? {}) as Record<string, unknown>),
      messages: plainCopy(messages),
      add_generation_prompt: vars.addGenerationPrompt ?? false,
    };
    if (vars.bosToken !== undefined) context.bos_token = vars.bosToken;
    if (vars.eosToken !== undefined) context.eos_token = vars.eosToken;
    if (vars.padToken !== undefined) context.pad_token = vars.padToken;
    if (vars.unkToken !== undefined) context.unk_token = vars.unkToken;
    try {
      return this.template.render(context);
    } catch (e) {
      // raise_exception(msg) (a global @huggingface/jinja defines, as
      // transformers does) surfaces here too, with the template's message.
      throw new Error(`${this.origin}: chat template failed to render: ${(e as Error).message}`);
    }
  }
}

/** One-shot render: parses `source` and renders `messages`. */
export function renderChatTemplate(
  source: string,
  messages: readonly ChatMessage[],
  vars: ChatTemplateVariables = {},
  origin = "chat template",
): string {
  return new ChatTemplate(source, origin).render(messages, vars);
}
