// Qwen2-VL's image side for the policy's prompt encoder: each image becomes
// its flattened patches and grid (image_processor.ts), and the chat
// template's <|image_pad|> marker (inside <|vision_start|>...<|vision_end|>)
// expands to t*h*w / merge^2 pads, as transformers' processor does.
import type { DecodedImage } from "../../io/image_decode.js";
import type { ResizeBackend } from "../../io/image_resample.js";
import { tensor } from "../../torch/index.js";
import type { ProcessedImages, VlmImageProcessor } from "../processor.js";
import { processQwenImages, type QwenImageProcessorConfig } from "./image_processor.js";
import { QWEN_VISION_TOKENS } from "./processor.js";

export class QwenPromptImages implements VlmImageProcessor {
  readonly imageMarker = QWEN_VISION_TOKENS.imagePad;
  readonly imageTokenId: number;
  readonly suppressTokenIds: readonly number[];

  constructor(
    readonly config: QwenImageProcessorConfig,
    tokenToId: (token: string) => number | undefined,
    readonly backend: ResizeBackend = "pil",
  ) {
    const id = tokenToId(QWEN_VISION_TOKENS.imagePad);
    if (id === undefined) throw new Error(`Qwen2-VL: the tokenizer has no ${QWEN_VISION_TOKENS.imagePad} token (a Qwen2-VL tokenizer has it as an added special token)`);
    this.imageTokenId = id;
    // The vision placeholders (and the hub tokenizer's <|vision_pad|>) never belong in an answer.
    const names = [QWEN_VISION_TOKENS.imagePad, QWEN_VISION_TOKENS.videoPad, QWEN_VISION_TOKENS.visionStart, QWEN_VISION_TOKENS.visionEnd, "<|vision_pad|>"];
    this.suppressTokenIds = [...new Set(names.map(tokenToId).filter((i): i is number => i !== undefined))];
  }

  async process(images: readonly DecodedImage[]): Promise<ProcessedImages> {
    const p = await processQwenImages(images, this.config, { backend: this.backend });
    return {
      inputs: { pixelValues: p.pixelValues, imageGridThw: tensor(BigInt64Array.from(p.imageGridThw.flat(), (v) => BigInt(v)), { shape: [p.imageGridThw.length, 3] }) },
      expansions: p.numImageTokens.map((n) => this.imageMarker.repeat(n)),
      imageTokenCounts: p.numImageTokens,
    };
  }
}
