// Pixel shuffle against a hand-computed example, and the vision position ids
// of partly padded images (Idefics3VisionEmbeddings' bucketize rule).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { bucketPositionIds, pixelShuffle } from "../../src/models/index.js";
import { arange, tidy } from "../../src/torch/index.js";

describe("Idefics3 connector: pixel shuffle", () => {
  test("4 x 4 grid of 2-dim tokens, scale 2 -> 2 x 2 grid of 8-dim tokens", () =>
    tidy(() => {
      // token (r, c) of the 4 x 4 grid is [10 * (4r + c), 10 * (4r + c) + 1]
      const x = arange(0, 16, 1, { dtype: "float32" }).mul(10).view(1, 16, 1).repeat(1, 1, 2).add(arange(0, 2, 1, { dtype: "float32" }).view(1, 1, 2));
      const y = pixelShuffle(x, 2);
      assert.deepEqual(y.shape, [1, 4, 8]);
      const tok = (r: number, c: number) => [10 * (4 * r + c), 10 * (4 * r + c) + 1];
      // Output token (R, C) holds the 2 x 2 block (2R + i, 2C + j) in row-major (i, j) order.
      const expected = [
        [...tok(0, 0), ...tok(0, 1), ...tok(1, 0), ...tok(1, 1)],
        [...tok(0, 2), ...tok(0, 3), ...tok(1, 2), ...tok(1, 3)],
        [...tok(2, 0), ...tok(2, 1), ...tok(3, 0), ...tok(3, 1)],
        [...tok(2, 2), ...tok(2, 3), ...tok(3, 2), ...tok(3, 3)],
      ];
      assert.deepEqual(y.toList(), [expected]);
    }));

  test("scale 3 on a 6 x 6 grid keeps every value once; bad grids are errors", () =>
    tidy(() => {
      const x = arange(0, 2 * 36 * 5, 1, { dtype: "float32" }).view(2, 36, 5);
      const y = pixelShuffle(x, 3);
      assert.deepEqual(y.shape, [2, 4, 45]);
      // second output token of image 1: block rows 0..2, cols 3..5; first feature = token (0, 3)
      assert.equal(y.select(0, 1).select(0, 1).select(0, 0).item(), (36 + 3) * 5);
      assert.deepEqual([...y.flatten().toFlatArray()].sort((a, b) => a - b), x.flatten().toFlatArray());
      assert.throws(() => pixelShuffle(arange(0, 15, 1, { dtype: "float32" }).view(1, 15, 1), 2), /do not form a square grid/);
      assert.throws(() => pixelShuffle(arange(0, 9, 1, { dtype: "float32" }).view(1, 9, 1), 2), /not a multiple of scale factor 2/);
    }));
});

describe("vision position ids (NaViT buckets)", () => {
  test("a full image numbers its patches 0 .. side^2 - 1", () => {
    assert.deepEqual(bucketPositionIds(4, 4, 4), [...Array(16).keys()]);
    assert.deepEqual(bucketPositionIds(32, 32, 32), [...Array(1024).keys()]);
  });
  test("3 x 2 real patches on a 4 x 4 grid spread over the grid (torch.bucketize, right=True)", () => {
    // rows: 0, 1/3, 2/3 -> buckets 0, 1, 2; cols: 0, 1/2 -> buckets 0, 2 (1/2 sits on a boundary)
    assert.deepEqual(bucketPositionIds(3, 2, 4), [0, 2, 4, 6, 8, 10]);
    // 1 x 1: a single patch takes position 0
    assert.deepEqual(bucketPositionIds(1, 1, 4), [0]);
  });
});
