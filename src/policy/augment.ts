// Training-time image augmentation for SFT: a horizontal flip, drawn per
// example of every optimizer step from (seed, step, position in the global
// batch), so that every rank of a data-parallel run and a resumed run draw
// the same flips as one uninterrupted process. A mirrored image keeps its
// labels (a weapon or an unclothed figure is one whichever way it faces);
// the flip is applied to the decoded pixels, before the family's processor,
// so it works the same for every model family.
import { hash32, Rng } from "../data/rng.js";
import type { DecodedImage } from "../io/image_decode.js";

/** SFT's augmentation choice (config `sft.augment`). */
export type SftAugment = "none" | "hflip";

/** The image mirrored left to right (rows of interleaved channels; any channel count). */
export function flipHorizontal(img: DecodedImage): DecodedImage {
  const { width: w, height: h, data } = img;
  const channels = data.length / (w * h);
  if (!Number.isInteger(channels) || channels < 1) throw new Error(`flipHorizontal: ${data.length} bytes is not a whole number of channels for ${w}x${h}`);
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) {
    const row = y * w * channels;
    for (let x = 0; x < w; x++) {
      const from = row + x * channels;
      const to = row + (w - 1 - x) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = data[from + c];
    }
  }
  return { ...img, data: out };
}

/** Which examples of a global batch are mirrored at `step` (1-based optimizer step): each with probability 1/2. */
export function flipsForStep(augment: SftAugment, seed: number, step: number, batchSize: number): boolean[] {
  if (augment === "none") return new Array<boolean>(batchSize).fill(false);
  return Array.from({ length: batchSize }, (_, j) => new Rng(hash32("sft-hflip", seed, step, j)).chance(0.5));
}
