// The RFC 4180 parser: quoting rules, line ends, and errors named by the line a record starts on.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { parseCsv } from "../../src/data/csv.js";

const fields = (text: string) => parseCsv(text).records.map((r) => r.fields);

describe("parseCsv", () => {
  test("plain fields, LF and CRLF line ends, trailing newline or not", () => {
    assert.deepEqual(fields("a,b,c\n1,2,3\n"), [
      ["a", "b", "c"],
      ["1", "2", "3"],
    ]);
    assert.deepEqual(fields("a,b\r\n1,2"), [
      ["a", "b"],
      ["1", "2"],
    ]);
    assert.deepEqual(fields("a,b\r1,2\r"), [
      ["a", "b"],
      ["1", "2"],
    ]);
  });

  test("quoted fields hold commas, doubled quotes and line breaks", () => {
    const text = 'image,labels\n"x, y.png","a;b"\n"say ""hi""",\n"two\nlines","c\r\nd"\n';
    const r = parseCsv(text);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(
      r.records.map((x) => x.fields),
      [
        ["image", "labels"],
        ["x, y.png", "a;b"],
        ['say "hi"', ""],
        ["two\nlines", "c\r\nd"],
      ],
    );
    // Each record is named by the line it starts on; the multi-line one starts on line 4.
    assert.deepEqual(
      r.records.map((x) => x.line),
      [1, 2, 3, 4],
    );
  });

  test("empty fields, a trailing comma, blank lines skipped, BOM dropped", () => {
    const r = parseCsv("\ufeffa,b,c\n\n,,\n1,2,\n\n");
    assert.deepEqual(
      r.records.map((x) => x.fields),
      [
        ["a", "b", "c"],
        ["", "", ""],
        ["1", "2", ""],
      ],
    );
    assert.deepEqual(
      r.records.map((x) => x.line),
      [1, 3, 4],
    );
  });

  test("a quote inside an unquoted field is kept literally", () => {
    assert.deepEqual(fields('a"b,c\n'), [['a"b', "c"]]);
  });

  test("text after a closing quote is an error on that record's line; parsing resumes on the next line", () => {
    const r = parseCsv('h1,h2\n"ab"x,1\nok,2\n');
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0].line, 2);
    assert.match(r.errors[0].message, /after a closing quote/);
    assert.deepEqual(
      r.records.map((x) => x.fields),
      [
        ["h1", "h2"],
        ["ok", "2"],
      ],
    );
    assert.equal(r.records[1].line, 3);
  });

  test("an unterminated quote is reported at the line where it opened", () => {
    const r = parseCsv('h1,h2\nok,1\n"never closed,2\nmore\n');
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0].line, 3);
    assert.match(r.errors[0].message, /unterminated/);
    assert.equal(r.records.length, 2);
  });
});
