// The decoder's 3-D position ids (transformers' get_rope_index for Qwen2-VL and
// Qwen2.5-VL images) and the positions decoding continues with.
//
// Per row, over the real (unpadded) tokens, in order: a run of text tokens
// gets positions p, p+1, ... on all three rows (temporal, height, width); a
// run of image tokens (one image, t*h*w/m^2 of them) gets temporal p + frame,
// height p + merged row, width p + merged column, and p then advances by
// max(h, w) / m, not by the token count. Padding gets 0. The rope delta of a
// row is max position + 1 - number of real tokens: a decoded token at mask
// cumsum position L (0-based over real tokens) sits at L + delta on all three
// rows, which is where transformers' generate() puts it (last prompt position
// + 1, + 2, ...) whenever the prompt ends with text, as chat prompts do.
//
// Images are matched to image-token runs in order, across the batch. Video
// tokens are not supported (they count as text).
import { type Tensor, tensor, tidy } from "../../torch/index.js";
import { checkGrids, type GridThw, mergedCount } from "./vision_layout.js";

export interface RopeIndex {
  /** int64 [3, B, T]: temporal, height and width positions (0 at padding). */
  positionIds: Tensor;
  /** int64 [B]: max position + 1 - real tokens, per row; decoding adds it to the 1-D position. */
  ropeDeltas: Tensor;
}

export interface RopeIndexOptions {
  imageTokenId: number;
  spatialMergeSize: number;
}

/** Plain-number form of ropeIndex (positions[r][b][t], deltas[b]). */
export function ropeIndexValues(
  ids: readonly (readonly number[])[],
  mask: readonly (readonly number[])[] | null,
  grids: readonly GridThw[],
  o: RopeIndexOptions,
): { positions: number[][][]; deltas: number[] } {
  const b = ids.length;
  const t = b > 0 ? ids[0].length : 0;
  const positions = [0, 1, 2].map(() => Array.from({ length: b }, () => new Array<number>(t).fill(0)));
  const deltas: number[] = [];
  let next = 0; // next image in `grids`
  const m = o.spatialMergeSize;
  for (let row = 0; row < b; row++) {
    const real: number[] = [];
    for (let j = 0; j < t; j++) if (!mask || mask[row][j] !== 0) real.push(j);
    let p = 0;
    let max = -1;
    let k = 0;
    const put = (j: number, pt: number, ph: number, pw: number) => {
      positions[0][row][j] = pt;
      positions[1][row][j] = ph;
      positions[2][row][j] = pw;
      max = Math.max(max, pt, ph, pw);
    };
    while (k < real.length) {
      const isImage = ids[row][real[k]] === o.imageTokenId;
      let end = k;
      while (end < real.length && (ids[row][real[end]] === o.imageTokenId) === isImage) end++;
      const len = end - k;
      if (!isImage) {
        for (let i = 0; i < len; i++) put(real[k + i], p + i, p + i, p + i);
        p += len;
      } else {
        if (next >= grids.length) throw new Error(`rope index: row ${row} has more image-token runs than the ${grids.length} image grid(s) given`);
        const g = grids[next++];
        const want = mergedCount(g, m);
        if (len !== want) {
          throw new Error(`rope index: row ${row}'s image run ${next - 1} has ${len} image tokens but image_grid_thw [${g.join(", ")}] needs t*h*w/${m * m} = ${want}`);
        }
        const gh = g[1] / m;
        const gw = g[2] / m;
        let i = 0;
        for (let f = 0; f < g[0]; f++) for (let r = 0; r < gh; r++) for (let c = 0; c < gw; c++) put(real[k + i++], p + f, p + r, p + c);
        p += Math.max(g[1], g[2]) / m;
      }
      k = end;
    }
    deltas.push(real.length === 0 ? 0 : max + 1 - real.length);
  }
  if (next !== grids.length) throw new Error(`rope index: ${grids.length} image grid(s) given but the prompts hold ${next} image-token run(s)`);
  return { positions, deltas };
}

/** get_rope_index: 3-D positions and rope deltas of a prompt batch. */
export function ropeIndex(inputIds: Tensor, attentionMask: Tensor | null | undefined, imageGridThw: readonly (readonly number[])[] | Tensor | null | undefined, o: RopeIndexOptions): RopeIndex {
  if (inputIds.ndim !== 2) throw new Error(`rope index: inputIds must be [batch, seq], got [${inputIds.shape.join(", ")}]`);
  const [b, t] = inputIds.shape;
  if (attentionMask && (attentionMask.ndim !== 2 || attentionMask.size(0) !== b || attentionMask.size(1) !== t)) {
    throw new Error(`rope index: attentionMask must be [${b}, ${t}], got [${attentionMask.shape.join(", ")}]`);
  }
  const grids = checkGrids(gridsOf(imageGridThw), o.spatialMergeSize, "rope index");
  const ids = inputIds.toList() as number[][];
  const mask = attentionMask ? (tidy(() => attentionMask.long().toList()) as number[][]) : null;
  const { positions, deltas } = ropeIndexValues(ids, mask, grids, o);
  const device = inputIds.device;
  return {
    positionIds: tensor(positions.flat(2), { dtype: "int64", device }).view(3, b, t),
    ropeDeltas: tensor(deltas, { dtype: "int64", device }),
  };
}

/**
 * Positions of the last `t` columns of `attentionMask` [B, S] (the new tokens
 * of a decode step): cumsum(mask) - 1 + delta on all three rows -> [3, B, t].
 * `ropeDeltas` [B] (a group-shared prompt's deltas repeated per completion).
 */
export function decodePositionIds(attentionMask: Tensor, ropeDeltas: Tensor, t = 1): Tensor {
  if (attentionMask.ndim !== 2) throw new Error(`decode positions: attentionMask must be [batch, seq], got [${attentionMask.shape.join(", ")}]`);
  const b = attentionMask.size(0);
  if (ropeDeltas.ndim !== 1 || ropeDeltas.size(0) !== b) throw new Error(`decode positions: ropeDeltas must be [${b}], got [${ropeDeltas.shape.join(", ")}]`);
  return tidy(() => {
    const pos = attentionMask.long().cumsum(-1).sub(1);
    const last = pos.narrow(1, pos.size(1) - t, t).add(ropeDeltas.long().view(b, 1)); // (B, t)
    return last.unsqueeze(0).expand(3, b, t).contiguous();
  });
}

/** image_grid_thw as rows of numbers (from a [N, 3] tensor or arrays). */
export function gridsOf(g: readonly (readonly number[])[] | Tensor | null | undefined): number[][] {
  if (!g) return [];
  if (Array.isArray(g)) return g.map((r) => [...r]);
  const t = g as Tensor;
  if (t.ndim !== 2 || t.size(1) !== 3) throw new Error(`image_grid_thw must be [num_images, 3], got [${t.shape.join(", ")}]`);
  return t.toList() as number[][];
}
