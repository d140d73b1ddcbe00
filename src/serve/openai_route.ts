// POST /v1/chat/completions, the subset of OpenAI's Chat Completions API a
// vision model answers: messages whose content is text or parts
// ({type: "text"} and {type: "image_url", image_url: {url: "data:image/...;base64,..."}}),
// max_tokens / max_completion_tokens, temperature (0 = greedy), top_p, seed,
// and stream. The answer is the policy's generated text for those messages.
// Streaming sends Server-Sent Events in OpenAI's chunk format ending with
// `data: [DONE]`; the text arrives in one content chunk once generated
// (generation here is not incremental).
import type { FastifyInstance } from "fastify";
import type { ChatContent as ChatContentPart, ChatMessage } from "../data/prompt.js";
import type { Engine } from "./engine.js";
import { bytesFromBase64, checkImageBytes, type ImageLimits, RequestError } from "./image_check.js";

interface OpenAiPart {
  type?: string;
  text?: string;
  image_url?: { url?: string } | string;
}

const ROLES = new Set(["system", "user", "assistant"]);

/** OpenAI messages -> the chat template's messages and the images in their order. */
export function fromOpenAiMessages(raw: unknown): { messages: ChatMessage[]; images: Uint8Array[] } {
  if (!Array.isArray(raw) || raw.length === 0) throw new RequestError(400, "bad_request", "messages: expected a non-empty list");
  const images: Uint8Array[] = [];
  const messages = raw.map((m: { role?: unknown; content?: unknown }, i): ChatMessage => {
    if (!m || typeof m !== "object" || typeof m.role !== "string" || !ROLES.has(m.role)) throw new RequestError(400, "bad_request", `messages[${i}].role: expected system, user or assistant`);
    const role = m.role as ChatMessage["role"];
    if (typeof m.content === "string") return { role, content: [{ type: "text", text: m.content }] };
    if (!Array.isArray(m.content)) throw new RequestError(400, "bad_request", `messages[${i}].content: expected a string or a list of parts`);
    const parts: ChatContentPart[] = (m.content as OpenAiPart[]).map((p, j) => {
      if (p?.type === "text" && typeof p.text === "string") return { type: "text", text: p.text };
      if (p?.type === "image_url") {
        const url = typeof p.image_url === "string" ? p.image_url : p.image_url?.url;
        if (typeof url !== "string" || !url.startsWith("data:")) throw new RequestError(400, "bad_request", `messages[${i}].content[${j}].image_url: only data: URIs are accepted (the server fetches nothing)`);
        images.push(bytesFromBase64(url, `messages[${i}].content[${j}]`));
        return { type: "image" };
      }
      throw new RequestError(400, "bad_request", `messages[${i}].content[${j}]: expected {type: "text", text} or {type: "image_url", image_url: {url}}`);
    });
    return { role, content: parts };
  });
  return { messages, images };
}

const num = (v: unknown, dflt: number, name: string, min: number, max: number): number => {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "number" || !(v >= min && v <= max)) throw new RequestError(400, "bad_request", `${name}: expected a number in [${min}, ${max}]`);
  return v;
};

export function registerOpenAiRoute(app: FastifyInstance, ready: () => Engine, limits: ImageLimits): void {
  app.post("/v1/chat/completions", async (req, reply) => {
    const e = ready();
    const body = req.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== "object") throw new RequestError(400, "bad_request", "expected a JSON body (OpenAI chat completions)");
    const { messages, images } = fromOpenAiMessages(body.messages);
    for (const [i, b] of images.entries()) await checkImageBytes(b, `image ${i}`, limits);
    const maxTokens = Math.floor(num(body.max_completion_tokens ?? body.max_tokens, 64, "max_tokens", 1, 4096));
    const temperature = num(body.temperature, 0, "temperature", 0, 2);
    const topP = num(body.top_p, 1, "top_p", 0, 1);
    const seed = Math.floor(num(body.seed, 0, "seed", 0, Number.MAX_SAFE_INTEGER));
    let r;
    try {
      r = await e.chat({ messages, images, maxTokens, temperature, topP, seed });
    } catch (err) {
      // A prompt the chat template or the image processor refuses is the request's fault.
      throw new RequestError(400, "bad_request", `cannot answer these messages: ${(err as Error).message}`);
    }
    const id = `chatcmpl-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens };
    if (body.stream !== true) {
      return { id, object: "chat.completion", created, model: e.modelName, choices: [{ index: 0, message: { role: "assistant", content: r.text }, finish_reason: r.finishReason, logprobs: null }], usage };
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const chunk = (delta: Record<string, unknown>, finish: string | null) =>
      res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: e.modelName, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] })}\n\n`);
    chunk({ role: "assistant", content: "" }, null);
    chunk({ content: r.text }, null);
    chunk({}, r.finishReason);
    res.end("data: [DONE]\n\n");
  });
}
