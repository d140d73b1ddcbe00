// The image side of a family's processor, as the policy's prompt encoder sees
// it: decoded images in, the family's tensors and the text each image marker
// of the chat-templated prompt expands to out. The chat template renders one
// `imageMarker` per image content part; the encoder replaces the i-th marker
// with the i-th expansion and tokenizes the result.
import type { DecodedImage } from "../io/image_decode.js";
import type { ImageInputs } from "./vlm.js";

export interface ProcessedImages {
  /** The family's tensors for these images (owned by the caller). */
  inputs: ImageInputs;
  /** Per image: the text that replaces its marker (e.g. Idefics3's tile grid of <image> runs). */
  expansions: string[];
  /** Per image: how many image-token ids its expansion tokenizes to. */
  imageTokenCounts: number[];
}

export interface VlmImageProcessor {
  /** What the chat template renders for an image part (Idefics3 "<image>", Qwen2-VL "<|image_pad|>"). */
  readonly imageMarker: string;
  /** Id of the token that image features replace. */
  readonly imageTokenId: number;
  /** Image-placeholder ids a completion must never contain (generation suppresses them). */
  readonly suppressTokenIds: readonly number[];
  /** Processes the images of one prompt, in marker order. */
  process(images: readonly DecodedImage[]): Promise<ProcessedImages>;
}

/**
 * Replaces each `marker` in `text` by the corresponding expansion (in order).
 * The count must match: a mismatch names both counts.
 */
export function expandImageMarkers(text: string, marker: string, expansions: readonly string[], where = "prompt"): string {
  const parts = text.split(marker);
  if (parts.length - 1 !== expansions.length) {
    throw new Error(`${where}: the text has ${parts.length - 1} image marker(s) '${marker}' but ${expansions.length} image(s) were given`);
  }
  let out = parts[0];
  for (let i = 0; i < expansions.length; i++) out += expansions[i] + parts[i + 1];
  return out;
}
