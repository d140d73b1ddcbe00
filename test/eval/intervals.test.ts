// Wilson score intervals against published values, and the few-images warnings.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatWithInterval, rateWithInterval, ratesWithIntervals, wilsonInterval } from "../../src/eval/intervals.js";

const near = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test("Wilson intervals: Newcombe (1998), Table I, method 3 (score interval without continuity correction)", () => {
  // 81/263 -> 0.2553 to 0.3662; 15/148 -> 0.0624 to 0.1605; 0/20 -> 0 to 0.1611; 1/29 -> 0.0061 to 0.1718.
  const cases: [number, number, number, number][] = [
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0, 0.1611],
    [1, 29, 0.0061, 0.1718],
  ];
  for (const [x, n, lo, hi] of cases) {
    const ci = wilsonInterval(x, n)!;
    near(ci.lo, lo, 5e-5, `${x}/${n} lo`);
    near(ci.hi, hi, 5e-5, `${x}/${n} hi`);
  }
});

test("Wilson intervals: symmetric under x -> n - x, inside [0, 1], null for n = 0, bad input refused", () => {
  for (const [x, n] of [[3, 10], [0, 7], [7, 7], [29, 47]]) {
    const a = wilsonInterval(x, n)!;
    const b = wilsonInterval(n - x, n)!;
    near(a.lo, 1 - b.hi, 1e-12, `${x}/${n}`);
    assert.ok(a.lo >= 0 && a.hi <= 1 && a.lo <= x / n && x / n <= a.hi);
  }
  assert.equal(wilsonInterval(0, 0), null);
  assert.throws(() => wilsonInterval(5, 3), /0 <= x <= n/);
  assert.throws(() => wilsonInterval(1.5, 3), /integers/);
  // More images, narrower interval at the same rate.
  const w = (x: number, n: number) => wilsonInterval(x, n)!.hi - wilsonInterval(x, n)!.lo;
  assert.ok(w(60, 100) < w(6, 10));
});

test("rates with intervals: counts, nulls, and warnings when a figure rests on few images", () => {
  const r = ratesWithIntervals({ tp: 8, fn: 2, fp: 5, tn: 95 }, 30);
  assert.deepEqual([r.recall.count, r.recall.of, r.fpr.count, r.fpr.of], [8, 10, 5, 100]);
  near(r.recall.lo!, 0.4901624715, 1e-9, "8/10 lo");
  near(r.recall.hi!, 0.9433178485, 1e-9, "8/10 hi");
  assert.equal(r.few_images, true);
  assert.deepEqual(r.warnings, ["recall rests on 10 offensive images (< 30)"]);
  const ok = ratesWithIntervals({ tp: 40, fn: 10, fp: 5, tn: 95 }, 30);
  assert.equal(ok.few_images, false);
  assert.deepEqual(ok.warnings, []);
  const none = rateWithInterval(0, 0);
  assert.deepEqual(none, { value: null, lo: null, hi: null, count: 0, of: 0 });
  assert.equal(formatWithInterval(none), "n/a");
  assert.equal(formatWithInterval(rateWithInterval(8, 10)), "0.800 [0.49, 0.94]");
});
