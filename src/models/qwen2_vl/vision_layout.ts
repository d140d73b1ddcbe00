// Where the vision tower's patches sit and which patches attend to which, as
// plain index arithmetic on the images' (t, h, w) patch grids (computed once
// per batch of images, before any tensor work).
//
// Patch order (the image processor's): per image, per frame, per 2x2 merge
// block in row-major block order, the block's patches row-major. So the
// merger's m^2 consecutive rows form one merged token, and the merged tokens of
// an image are row-major over the (h/m, w/m) grid.
//
// Attention: every frame of every image attends only within itself
// (transformers' cu_seqlens: h*w patches, repeated t times per image). Qwen2.5-VL
// additionally runs most blocks over windows: the merged grid is cut into
// windows of (window_size / merge / patch)^2 merged tokens, row-major windows,
// row-major inside each, the last row/column of windows cut short. The rows are
// permuted into window order for the whole tower (window index), so windows and
// frames are contiguous runs; the merger's output is permuted back.

/** One image's grid of patches: frames, rows, columns (image_grid_thw). */
export type GridThw = readonly [number, number, number];

/** Checks grids against the merge size; returns them as tuples. */
export function checkGrids(grids: readonly (readonly number[])[], merge: number, where: string): GridThw[] {
  return grids.map((g, i) => {
    if (g.length !== 3 || !g.every((x) => Number.isInteger(x) && x >= 1)) throw new Error(`${where}: image_grid_thw[${i}] must be three positive integers (t, h, w), got [${g.join(", ")}]`);
    if (g[1] % merge !== 0 || g[2] % merge !== 0) throw new Error(`${where}: image_grid_thw[${i}] = [${g.join(", ")}]: h and w must be multiples of spatial_merge_size ${merge}`);
    return [g[0], g[1], g[2]] as GridThw;
  });
}

/** Patches of one grid (rows of pixel_values). */
export const patchCount = (g: GridThw): number => g[0] * g[1] * g[2];

/** Merged tokens (image pad tokens in the prompt) of one grid. */
export const mergedCount = (g: GridThw, merge: number): number => (g[0] * g[1] * g[2]) / (merge * merge);

/** (row, column) of every patch, in patch order: [N * 2] flattened. */
export function visionPositions(grids: readonly GridThw[], merge: number): number[] {
  const out: number[] = [];
  for (const [t, h, w] of grids) {
    for (let f = 0; f < t; f++) {
      for (let bh = 0; bh < h / merge; bh++) {
        for (let bw = 0; bw < w / merge; bw++) {
          for (let mh = 0; mh < merge; mh++) for (let mw = 0; mw < merge; mw++) out.push(bh * merge + mh, bw * merge + mw);
        }
      }
    }
  }
  return out;
}

/** Lengths of the full-attention segments: one per frame of each image (h * w patches). */
export function frameSegments(grids: readonly GridThw[]): number[] {
  const out: number[] = [];
  for (const [t, h, w] of grids) for (let f = 0; f < t; f++) out.push(h * w);
  return out;
}

export interface WindowLayout {
  /** Merged-token index for each position of the window order (a permutation of 0..M-1). */
  windowIndex: number[];
  /** Patches per window, in window order (empty windows left out). */
  windowSegments: number[];
}

/** Qwen2.5-VL's window order (transformers' get_vision_window_index). */
export function windowLayout(grids: readonly GridThw[], merge: number, windowSize: number, patchSize: number): WindowLayout {
  const side = windowSize / merge / patchSize; // merged tokens per window side
  if (!Number.isInteger(side) || side < 1) throw new Error(`window layout: window_size ${windowSize} / merge ${merge} / patch ${patchSize} must be a positive integer`);
  const windowIndex: number[] = [];
  const windowSegments: number[] = [];
  let base = 0;
  for (const [t, h, w] of grids) {
    const gh = h / merge;
    const gw = w / merge;
    const nwh = Math.ceil(gh / side);
    const nww = Math.ceil(gw / side);
    for (let f = 0; f < t; f++) {
      for (let wr = 0; wr < nwh; wr++) {
        for (let wc = 0; wc < nww; wc++) {
          let n = 0;
          for (let r = wr * side; r < Math.min((wr + 1) * side, gh); r++) {
            for (let c = wc * side; c < Math.min((wc + 1) * side, gw); c++) {
              windowIndex.push(base + (f * gh + r) * gw + c);
              n++;
            }
          }
          if (n > 0) windowSegments.push(n * merge * merge);
        }
      }
    }
    base += t * gh * gw;
  }
  return { windowIndex, windowSegments };
}

/** The inverse of a permutation. */
export function inversePermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => {
    inv[p] = i;
  });
  return inv;
}
