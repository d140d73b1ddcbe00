// The answer parser, rule by rule, as a table: every accepted form, every
// rejected form with the reason it must give.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { answerContent, buildMessages, targetAnswer } from "../../src/data/prompt.js";
import { makeAnswerParser, parseAnswer, type ParsedAnswer } from "../../src/rewards/answer_parser.js";

const CATS = ["nudity", "weapons"];
const safe = (hasThink = false): ParsedAnswer => ({ kind: "safe", hasThink });
const off = (categories: string[], hasThink = false): ParsedAnswer => ({ kind: "offensive", categories, hasThink });

/** [completion, expected] for accepted completions. */
const ACCEPTED: [string, ParsedAnswer][] = [
  // canonical forms
  ["<answer>safe</answer>", safe()],
  ["<answer>weapons</answer>", off(["weapons"])],
  ["<answer>nudity</answer>", off(["nudity"])],
  ["<answer>nudity, weapons</answer>", off(["nudity", "weapons"])],
  // rule 8: configured order and spelling, duplicates collapse
  ["<answer>weapons, nudity</answer>", off(["nudity", "weapons"])],
  ["<answer>weapons,weapons</answer>", off(["weapons"])],
  ["<answer>safe, safe</answer>", safe()],
  // rule 5: case and whitespace
  ["<answer>WEAPONS</answer>", off(["weapons"])],
  ["<answer>  Nudity ,\n weapons  </answer>", off(["nudity", "weapons"])],
  ["<answer>\nSafe\n</answer>", safe()],
  // rule 2: tags are case-insensitive
  ["<ANSWER>weapons</Answer>", off(["weapons"])],
  // leading / trailing whitespace
  ["  \n <answer>safe</answer> \n", safe()],
  // rule 1: end tokens after the answer
  ["<answer>weapons</answer><end_of_utterance>", off(["weapons"])],
  ["<answer>weapons</answer> <end_of_utterance>\n", off(["weapons"])],
  ["<answer>safe</answer><|im_end|><|endoftext|>", safe()],
  ["<answer>safe</answer></s>", safe()],
  ["<answer>safe</answer>\n<eos> <|eot_id|>", safe()],
  // rule 4: one think block before the answer
  ["<think>a rifle on a table</think><answer>weapons</answer>", off(["weapons"], true)],
  ["<think>\nnothing offensive\n</think>\n\n<answer>safe</answer>", safe(true)],
  ["<think></think><answer>safe</answer>", safe(true)],
  [" <THINK>x</Think> <answer>nudity</answer><end_of_utterance>", off(["nudity"], true)],
  ["<think>is this safe, or weapons?</think><answer>weapons</answer>", off(["weapons"], true)],
];

/** [completion, reason pattern] for rejected completions. */
const REJECTED: [string, RegExp][] = [
  // rule 3: exactly one answer block
  ["", /no <answer> block/],
  ["weapons", /no <answer> block/],
  ["The image shows weapons.", /no <answer> block/],
  ["<answer>weapons", /unclosed <answer>/],
  ["<answer>weapons<end_of_utterance>", /unclosed <answer>/],
  ["weapons</answer>", /<\/answer> without <answer>/],
  ["</answer>weapons<answer>", /<\/answer> before <answer>/],
  ["<answer>safe</answer><answer>weapons</answer>", /more than one <answer> block/],
  ["<answer>weapons</answer>\n<answer>weapons</answer>", /more than one <answer> block/],
  ["<think><answer>safe</answer></think><answer>weapons</answer>", /more than one <answer> block/],
  // rule 1: text after the answer
  ["<answer>weapons</answer> because of the gun", /text after <\/answer>: "because of the gun"/],
  ["<answer>weapons</answer>.", /text after <\/answer>/],
  ["<answer>safe</answer><end_of_utterance>more", /text after <\/answer>/],
  ["<answer>safe</answer><think>x</think>", /text after <\/answer>/],
  ["<think><answer>safe</answer></think>", /text after <\/answer>/],
  ["<answer>safe</answer><END_OF_UTTERANCE>", /text after <\/answer>/], // end tokens are exact
  // rule 4: text before the answer
  ["Answer: <answer>weapons</answer>", /text before <answer>: "Answer:"/],
  ["<end_of_utterance><answer>safe</answer>", /text before <answer>/],
  ["I think <think>x</think><answer>safe</answer>", /text before <think>: "I think"/],
  ["<think>x</think> so: <answer>safe</answer>", /text between <\/think> and <answer>: "so:"/],
  ["<think>x<answer>safe</answer>", /unclosed <think>/],
  ["x</think><answer>safe</answer>", /<\/think> without <think>/],
  ["</think>x<think><answer>safe</answer>", /<\/think> before <think>/],
  ["<think>a</think><think>b</think><answer>safe</answer>", /more than one think block/],
  // rule 5: content
  ["<answer></answer>", /empty answer/],
  ["<answer>  \n </answer>", /empty answer/],
  ["<answer>weapons,</answer>", /empty item/],
  ["<answer>nudity,,weapons</answer>", /empty item/],
  ["<answer>, weapons</answer>", /empty item/],
  ["<answer><think>weapons</think></answer>", /markup inside <answer>/],
  // rule 6: unknown items
  ["<answer>weapon</answer>", /unknown category "weapon"/],
  ["<answer>none</answer>", /unknown category "none"/],
  ["<answer>unsafe</answer>", /unknown category "unsafe"/],
  ["<answer>nudity and weapons</answer>", /unknown category "nudity and weapons"/],
  ["<answer>nudity; weapons</answer>", /unknown category/],
  ["<answer>weapons, drugs</answer>", /unknown category "drugs" \(expected "safe" or one of: nudity, weapons\)/],
  ["<answer>yes</answer>", /unknown category "yes"/],
  // rule 7: hedges
  ["<answer>safe, weapons</answer>", /hedged answer: names "safe" together with weapons/],
  ["<answer>nudity, safe</answer>", /hedged answer/],
  ["<answer>Safe,NUDITY,weapons</answer>", /hedged answer: names "safe" together with nudity, weapons/],
];

describe("parseAnswer: accepted forms", () => {
  for (const [text, expected] of ACCEPTED) {
    test(JSON.stringify(text), () => assert.deepEqual(parseAnswer(text, CATS), expected));
  }
});

describe("parseAnswer: rejected forms give a reason", () => {
  for (const [text, reason] of REJECTED) {
    test(JSON.stringify(text), () => {
      const p = parseAnswer(text, CATS);
      assert.equal(p.kind, "unparseable", `expected unparseable, got ${JSON.stringify(p)}`);
      assert.match((p as { reason: string }).reason, reason);
    });
  }
});

describe("parseAnswer: options and categories", () => {
  test("allowThink: false rejects a think block and still accepts plain answers", () => {
    const parse = makeAnswerParser(CATS, { allowThink: false });
    assert.deepEqual(parse("<answer>safe</answer>"), safe());
    const p = parse("<think>x</think><answer>safe</answer>");
    assert.equal(p.kind, "unparseable");
    assert.match((p as { reason: string }).reason, /think block not allowed/);
  });

  test("custom endTokens replace the defaults", () => {
    const parse = makeAnswerParser(CATS, { endTokens: ["[END]"] });
    assert.deepEqual(parse("<answer>weapons</answer>[END]"), off(["weapons"]));
    assert.equal(parse("<answer>weapons</answer><end_of_utterance>").kind, "unparseable");
  });

  test("user categories: multi-word names, any case in config, returned in config spelling and order", () => {
    const cats = ["Hate Symbols", "gore", "weapons"];
    assert.deepEqual(parseAnswer("<answer>weapons, hate   symbols</answer>", cats), off(["Hate Symbols", "weapons"]));
    assert.deepEqual(parseAnswer("<answer>GORE</answer>", cats), off(["gore"]));
    assert.equal(parseAnswer("<answer>nudity</answer>", cats).kind, "unparseable", "nudity is not configured here");
  });

  test("a bad category list is an Error naming the entry", () => {
    assert.throws(() => parseAnswer("<answer>safe</answer>", []), /categories: expected a non-empty list/);
    assert.throws(() => parseAnswer("<answer>safe</answer>", ["nudity", "Safe"]), /categories\[1\]: "safe" is the answer for no category/);
    assert.throws(() => parseAnswer("<answer>safe</answer>", ["a,b"]), /categories\[0\]: category name "a,b" must not contain any of ; \| \+ , \/ \\ < >/);
    assert.throws(() => parseAnswer("<answer>safe</answer>", ["x", "a/b"]), /categories\[1\]: category name "a\/b"/);
    assert.throws(() => parseAnswer("<answer>safe</answer>", ["<b>"]), /categories\[0\]: category name "<b>"/);
    assert.throws(() => parseAnswer("<answer>safe</answer>", ["gore", " GORE "]), /categories\[1\]: .*repeats categories\[0\]/);
    assert.throws(() => parseAnswer("<answer>safe</answer>", ["  "]), /categories\[0\]: expected a non-empty category name/);
  });

  test("a non-string completion is unparseable, not a crash", () => {
    assert.equal(parseAnswer(null as unknown as string, CATS).kind, "unparseable");
  });
});

describe("prompt <-> parser round trip", () => {
  test("targetAnswer writes what parseAnswer reads back, for every label subset", () => {
    const cats = ["nudity", "weapons", "gore"];
    const subsets = [[], ["nudity"], ["weapons"], ["gore"], ["nudity", "weapons"], ["gore", "nudity"], ["weapons", "gore", "nudity"]];
    for (const labels of subsets) {
      const text = targetAnswer(labels, cats);
      const p = parseAnswer(text, cats);
      if (labels.length === 0) assert.deepEqual(p, safe(), text);
      else assert.deepEqual(p, off(cats.filter((c) => labels.includes(c))), text);
    }
    assert.equal(targetAnswer(["weapons", "nudity"], cats), "<answer>nudity, weapons</answer>");
    assert.equal(targetAnswer([], cats), "<answer>safe</answer>");
    assert.equal(answerContent(["WEAPONS", "weapons"], CATS), "weapons");
    assert.throws(() => targetAnswer(["drugs"], CATS), /label "drugs" is not one of the configured categories \(nudity, weapons\)/);
  });

  test("buildMessages: HF multimodal messages with the categories filled in", () => {
    const m = buildMessages({});
    assert.equal(m.length, 2);
    assert.equal(m[0].role, "system");
    assert.equal(m[1].role, "user");
    assert.deepEqual(m[1].content[0], { type: "image" });
    const userText = (m[1].content[1] as { text: string }).text;
    assert.match(userText, /nudity, weapons/);
    assert.match(userText, /<answer>weapons<\/answer>/);
    assert.match(userText, /<answer>nudity, weapons<\/answer>/);
    assert.match(userText, /<answer>safe<\/answer>/);
    assert.doesNotMatch(userText, /\{categories\}|<think>/);
    // the examples quoted in the default prompt are themselves parseable
    const examples = userText.match(/<answer>[^<]+<\/answer>/g) ?? [];
    assert.equal(examples.length, 3);
    for (const ex of examples) assert.notEqual(parseAnswer(ex, CATS).kind, "unparseable", ex);

    const custom = buildMessages({ systemPrompt: "", userPrompt: "Flag {categories}.", categories: ["gore"], allowThink: true }, "<answer>gore</answer>");
    assert.deepEqual(custom, [
      { role: "user", content: [{ type: "image" }, { type: "text", text: "Flag gore. You may first reason briefly inside <think></think>, then give the answer." }] },
      { role: "assistant", content: [{ type: "text", text: "<answer>gore</answer>" }] },
    ]);
  });

  test("bad prompt configs are Errors naming the field", () => {
    assert.throws(() => buildMessages({ userPrompt: "Is it bad?" }), /prompt.userPrompt: must be a string containing the \{categories\} placeholder/);
    assert.throws(() => buildMessages({ categories: ["safe"] }), /prompt.categories\[0\]: "safe"/);
    assert.throws(() => buildMessages({ allowThink: "yes" as unknown as boolean }), /prompt.allowThink/);
  });
});
