// Chat-template rendering on its own: SMOLVLM_CHAT_TEMPLATE against strings
// written by hand from SmolVLM-Instruct's format, against Python Jinja2's
// renders of the same template (fixture from
// scripts/fixtures/make_chat_template_fixture.py), generic templates with the
// special-token variables, and message validation.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { ChatTemplate, renderChatTemplate, SMOLVLM_CHAT_TEMPLATE, type ChatMessage } from "../../src/io/chat_template.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const PY_FIXTURE = path.join(ROOT, "test/fixtures/tokenizer/smolvlm_template_python.json");

const IMG = { type: "image" } as const;
const text = (t: string) => ({ type: "text" as const, text: t });
const smol = (messages: ChatMessage[], addGenerationPrompt = false) => renderChatTemplate(SMOLVLM_CHAT_TEMPLATE, messages, { addGenerationPrompt });

describe("SMOLVLM_CHAT_TEMPLATE (expected strings written by hand)", () => {
  test("one user turn with an image first: ':' glued to the role, then the generation prompt", () => {
    const msgs: ChatMessage[] = [{ role: "user", content: [IMG, text("What is in this image?")] }];
    assert.equal(smol(msgs, true), "<|im_start|>User:<image>What is in this image?<end_of_utterance>\nAssistant:");
    assert.equal(smol(msgs, false), "<|im_start|>User:<image>What is in this image?<end_of_utterance>\n");
  });

  test("system, user (text then images) and assistant turns; <|im_start|> only once", () => {
    const msgs: ChatMessage[] = [
      { role: "system", content: [text("You moderate images.")] },
      { role: "user", content: [text("Check this:"), IMG, text(" and this:"), IMG] },
      { role: "assistant", content: [text("<think>A rifle.</think><answer>weapons</answer>")] },
    ];
    const expected =
      "<|im_start|>System: You moderate images.<end_of_utterance>\n" +
      "User: Check this:<image> and this:<image><end_of_utterance>\n" +
      "Assistant: <think>A rifle.</think><answer>weapons</answer><end_of_utterance>\n";
    assert.equal(smol(msgs, false), expected);
    assert.equal(smol(msgs, true), expected + "Assistant:");
  });

  test("plain-string content renders as text; an assistant turn may start with an image; an empty part list", () => {
    const msgs: ChatMessage[] = [
      { role: "system", content: "Plain string system prompt." },
      { role: "user", content: "No image, plain string." },
      { role: "assistant", content: [IMG, text("an image first")] },
      { role: "user", content: [] },
    ];
    assert.equal(
      smol(msgs, true),
      "<|im_start|>System: Plain string system prompt.<end_of_utterance>\n" +
        "User: No image, plain string.<end_of_utterance>\n" +
        "Assistant:<image>an image first<end_of_utterance>\n" +
        "User: <end_of_utterance>\n" +
        "Assistant:",
    );
    assert.equal(smol([], true), "<|im_start|>Assistant:");
  });

  test("the template ignores bos/eos variables (SmolVLM writes its tokens literally)", () => {
    const msgs: ChatMessage[] = [{ role: "user", content: "hi" }];
    assert.equal(
      renderChatTemplate(SMOLVLM_CHAT_TEMPLATE, msgs, { bosToken: "<s>", eosToken: "</s>" }),
      "<|im_start|>User: hi<end_of_utterance>\n",
    );
  });

  test("same strings as Python Jinja2 (transformers' environment) renders of this template", () => {
    const fx = JSON.parse(fs.readFileSync(PY_FIXTURE, "utf8")) as {
      template: string;
      cases: Array<{ messages: ChatMessage[]; add_generation_prompt: boolean; expected: string }>;
    };
    assert.equal(fx.template, SMOLVLM_CHAT_TEMPLATE, "fixture is stale: rerun scripts/fixtures/make_chat_template_fixture.py");
    assert.ok(fx.cases.length >= 5);
    for (const c of fx.cases) assert.equal(smol(c.messages, c.add_generation_prompt), c.expected);
  });
});

describe("generic templates", () => {
  test("bos_token, eos_token, pad_token, add_generation_prompt and extra variables reach the template", () => {
    const src =
      "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}" +
      "{% if add_generation_prompt %}<assistant>{% endif %}|{{ pad_token }}|{{ additional_special_tokens | join(',') }}";
    const t = new ChatTemplate(src, "test template");
    const msgs: ChatMessage[] = [{ role: "user", content: "hi" }];
    assert.equal(
      t.render(msgs, { bosToken: "<s>", eosToken: "</s>", padToken: "<pad>", extra: { additional_special_tokens: ["<a>", "<b>"] } }),
      "<s><user>hi</s>|<pad>|<a>,<b>",
    );
    assert.equal(
      t.render(msgs, { bosToken: "<s>", eosToken: "</s>", addGenerationPrompt: true, extra: { additional_special_tokens: [] } }),
      "<s><user>hi</s><assistant>||",
    );
  });

  test("trim_blocks / lstrip_blocks as transformers sets them", () => {
    const src = "{% for m in messages %}\n    {% if m.role == 'user' %}\nU:{{ m.content }}\n    {% endif %}\n{% endfor %}";
    assert.equal(renderChatTemplate(src, [{ role: "user", content: "a" }, { role: "assistant", content: "b" }, { role: "user", content: "c" }]), "U:a\nU:c\n");
  });

  test("extra fields on parts are not passed through as non-JSON values", () => {
    // An image part may carry pixels (a Buffer) in callers' code; templates see only plain data.
    const part = { type: "image", image: Buffer.from([1, 2, 3]), url: "x.png" } as unknown as { type: "image" };
    const out = renderChatTemplate("{{ messages[0].content[0].url }}|{{ messages[0].content[0].image is defined }}", [{ role: "user", content: [part] }]);
    assert.equal(out, "x.png|false");
  });
});

describe("errors", () => {
  test("a template that does not parse names its origin", () => {
    assert.throws(() => new ChatTemplate("{% for m in messages %}", "my/chat_template.jinja"), /my\/chat_template\.jinja: chat template does not parse/);
  });

  test("raise_exception's message and the origin appear in the error", () => {
    assert.throws(
      () => renderChatTemplate("{{ raise_exception('only user turns') }}", [], {}, "t.jinja"),
      /t\.jinja: chat template failed to render: only user turns/,
    );
  });

  test("malformed messages are named by index", () => {
    const t = new ChatTemplate(SMOLVLM_CHAT_TEMPLATE, "smol");
    const bad = (m: unknown) => () => t.render(m as ChatMessage[]);
    assert.throws(bad("x"), /chat messages: expected an array/);
    assert.throws(bad([{ role: "user", content: "a" }, { content: "b" }]), /chat messages\[1\]\.role: expected a non-empty string/);
    assert.throws(bad([{ role: "user", content: 3 }]), /chat messages\[0\]\.content: expected a string or an array of parts/);
    assert.throws(bad([{ role: "user", content: [IMG, { type: "video" }] }]), /chat messages\[0\]\.content\[1\]\.type: expected "text" or "image", got "video"/);
    assert.throws(bad([{ role: "user", content: [{ type: "text" }] }]), /chat messages\[0\]\.content\[0\]\.text: expected a string/);
  });
});
