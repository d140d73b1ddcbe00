// Idefics3's image side for the policy's prompt encoder: each image becomes
// its tiles (image_processor.ts) and the text its <image> marker expands to
// (prompt.ts: a grid of <row_R_col_C> tiles plus the global image, each a
// run of imageSeqLen <image> tokens).
import type { DecodedImage } from "../../io/image_decode.js";
import type { ResizeBackend } from "../../io/image_resample.js";
import type { ProcessedImages, VlmImageProcessor } from "../processor.js";
import type { Idefics3ImageProcessorConfig } from "./image_processor_config.js";
import { processImages } from "./image_processor.js";
import { IDEFICS3_IMAGE_TOKENS, imagePromptString, imageTokenCount } from "./prompt.js";

/** Largest tile grid whose position tokens are suppressed (SmolVLM's tokenizer has <row_1_col_1> .. <row_6_col_6>). */
const MAX_GRID = 12;

export class Idefics3PromptImages implements VlmImageProcessor {
  readonly imageMarker = IDEFICS3_IMAGE_TOKENS.imageToken;
  readonly imageTokenId: number;
  readonly suppressTokenIds: readonly number[];

  constructor(
    readonly config: Idefics3ImageProcessorConfig,
    tokenToId: (token: string) => number | undefined,
    /** <image> tokens per tile: the model config's imageSeqLen. */
    readonly imageSeqLen: number,
    readonly backend: ResizeBackend = "pil",
  ) {
    const id = tokenToId(IDEFICS3_IMAGE_TOKENS.imageToken);
    if (id === undefined) throw new Error(`Idefics3: the tokenizer has no ${IDEFICS3_IMAGE_TOKENS.imageToken} token (an Idefics3 tokenizer has it as an added token)`);
    this.imageTokenId = id;
    const names = [IDEFICS3_IMAGE_TOKENS.imageToken, IDEFICS3_IMAGE_TOKENS.fakeImageToken, IDEFICS3_IMAGE_TOKENS.globalImageToken];
    for (let r = 1; r <= MAX_GRID; r++) for (let c = 1; c <= MAX_GRID; c++) names.push(`<row_${r}_col_${c}>`);
    this.suppressTokenIds = names.map(tokenToId).filter((i): i is number => i !== undefined);
  }

  async process(images: readonly DecodedImage[]): Promise<ProcessedImages> {
    const p = await processImages(images, this.config, { backend: this.backend });
    return {
      inputs: { pixelValues: p.pixelValues },
      expansions: p.rows.map((r, i) => imagePromptString(r, p.cols[i], this.imageSeqLen)),
      imageTokenCounts: p.rows.map((r, i) => imageTokenCount(r, p.cols[i], this.imageSeqLen)),
    };
  }
}
