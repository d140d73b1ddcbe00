// The synthetic set's rasterizer: coverage areas against exact values,
// holes, union of overlapping contours whatever their orientation, blending.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Canvas, capsule, ellipse, placement, rasterize, rect, shape, transformShape, type Contour } from "../../src/data/synth/raster.js";

const area = (s: Parameters<typeof rasterize>[0], size = 64) => rasterize(s, size, size).area();
const reversed = (c: Contour): Contour => [...c].reverse();

describe("rasterize", () => {
  test("a rectangle with integer top/bottom covers exactly its area (horizontal coverage is exact)", () => {
    assert.ok(Math.abs(area(shape([rect(10.25, 5, 30.75, 20)])) - 20.5 * 15) < 1e-3);
    // fractional top/bottom: vertical sampling (5 rows a pixel) errs by at most 0.1 px per edge
    const a = area(shape([rect(10.25, 5.5, 30.75, 20.3)]));
    assert.ok(Math.abs(a - 20.5 * 14.8) <= 2 * 0.1 * 20.5 + 1e-6, `${a}`);
  });

  test("a polygonal circle covers the polygon's area within 0.5%", () => {
    const n = 28;
    const exact = 0.5 * n * 20 * 20 * Math.sin((2 * Math.PI) / n);
    const a = area(shape([ellipse(32, 32, 20, 20, n)]));
    assert.ok(Math.abs(a - exact) / exact < 0.005, `${a} vs ${exact}`);
  });

  test("edge pixels get partial coverage; interior pixels 1; outside 0", () => {
    const m = rasterize(shape([rect(2.5, 2, 6, 6)]), 8, 8);
    assert.ok(Math.abs(m.data[3 * 8 + 2] - 0.5) < 1e-6);
    assert.equal(m.data[3 * 8 + 4], 1);
    assert.equal(m.data[3 * 8 + 7], 0);
    assert.equal(m.data[1 * 8 + 4], 0);
  });

  test("holes are cut out; orientation of solids and holes does not matter", () => {
    const outer = rect(10, 10, 50, 50);
    const inner = rect(20, 20, 30, 30);
    const expect = 40 * 40 - 10 * 10;
    assert.ok(Math.abs(area(shape([outer], [inner])) - expect) < 1e-3);
    assert.ok(Math.abs(area(shape([reversed(outer)], [inner])) - expect) < 1e-3);
    assert.ok(Math.abs(area(shape([outer], [reversed(inner)])) - expect) < 1e-3);
  });

  test("overlapping solids form their union even with opposite orientations", () => {
    const a = rect(10, 10, 30, 30);
    const b = reversed(rect(20, 20, 40, 40));
    assert.ok(Math.abs(area(shape([a, b])) - (400 + 400 - 100)) < 1e-3);
  });

  test("shapes partly off the canvas are clipped", () => {
    assert.ok(Math.abs(area(shape([rect(-10, -10, 10, 10)]), 32) - 100) < 1e-3);
    assert.equal(area(shape([rect(40, 40, 50, 50)]), 32), 0);
  });

  test("placement: rotation keeps the area, scaling multiplies it, mirroring keeps it", () => {
    const cap = shape([capsule([-1, 0], [1, 0], 0.3)]);
    const base = area(transformShape(placement(32, 32, 0, 10), cap));
    const rotated = area(transformShape(placement(32, 32, 1.1, 10), cap));
    const mirrored = area(transformShape(placement(32, 32, 0.4, -10, 10), cap));
    const doubled = area(transformShape(placement(32, 32, 0, 20), cap));
    assert.ok(Math.abs(rotated - base) / base < 0.01, `${rotated} vs ${base}`);
    assert.ok(Math.abs(mirrored - base) / base < 0.01);
    assert.ok(Math.abs(doubled / base - 4) < 0.04);
  });
});

describe("Canvas", () => {
  test("fill blends by coverage; gradients run between their points; bytes are clamped and rounded", () => {
    const c = new Canvas(4, 1);
    c.fill(rasterize(shape([rect(0, 0, 4, 1)]), 4, 1), { kind: "solid", color: [1, 0, 0] });
    c.fill(rasterize(shape([rect(1.5, 0, 4, 1)]), 4, 1), { kind: "solid", color: [0, 0, 1] }, 0.5);
    const b = c.toBytes();
    assert.deepEqual([...b.slice(0, 3)], [255, 0, 0]);
    assert.deepEqual([...b.slice(3, 6)], [191, 0, 64]); // coverage 0.5 * alpha 0.5
    assert.deepEqual([...b.slice(6, 9)], [128, 0, 128]);
    const g = new Canvas(4, 1);
    g.fill(rasterize(shape([rect(0, 0, 4, 1)]), 4, 1), { kind: "linear", c0: [0, 0, 0], c1: [1, 1, 1], p0: [0, 0], p1: [4, 0] });
    assert.deepEqual([...g.toBytes()].filter((_, k) => k % 3 === 0), [32, 96, 159, 223]);
  });
});
