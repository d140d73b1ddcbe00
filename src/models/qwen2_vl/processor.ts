// The Qwen2-VL / Qwen2.5-VL processor: chat-templated texts holding one
// "<|vision_start|><|image_pad|><|vision_end|>" per image, plus the images ->
// padded token ids, attention mask, pixel_values and image_grid_thw, as
// transformers' Qwen2VLProcessor.__call__ does (image processor, expansion of
// each <|image_pad|> into t*h*w/merge^2 copies, tokenizer, padding).
//
// Defaults follow TRL's GRPO call (padding_side "left", add_special_tokens
// false); Qwen2's tokenizer adds no special tokens either way.
import { checkDecodedImage, decodeImage, type DecodedImage } from "../../io/image_decode.js";
import type { ResizeBackend } from "../../io/image_resample.js";
import { tensor, type Tensor } from "../../torch/index.js";
import { processQwenImages, type QwenImageProcessorConfig, readQwenImageProcessorConfig } from "./image_processor.js";

/** The special token texts of Qwen's vision prompts. */
export const QWEN_VISION_TOKENS = Object.freeze({
  imagePad: "<|image_pad|>",
  videoPad: "<|video_pad|>",
  visionStart: "<|vision_start|>",
  visionEnd: "<|vision_end|>",
});

/**
 * Replaces the k-th `imageToken` of `text` with counts[k] copies of it
 * (transformers' processor expansion). The number of markers must equal the
 * number of counts.
 */
export function expandImagePads(text: string, counts: readonly number[], imageToken: string = QWEN_VISION_TOKENS.imagePad): string {
  const parts = text.split(imageToken);
  if (parts.length - 1 !== counts.length) {
    throw new Error(`expandImagePads: the text has ${parts.length - 1} ${imageToken} marker(s) but ${counts.length} image(s) were given`);
  }
  let out = parts[0];
  counts.forEach((n, k) => {
    if (!Number.isInteger(n) || n < 1) throw new Error(`expandImagePads: image ${k} must expand to a positive number of tokens, got ${n}`);
    out += imageToken.repeat(n) + parts[k + 1];
  });
  return out;
}

/** What the processor needs of a tokenizer (src/io/tokenizer.ts's HFTokenizer has it). */
export interface QwenTokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  readonly padTokenId: number | undefined;
  tokenToId(token: string): number | undefined;
}

/** One sample: its chat-templated text (one <|image_pad|> per image) and its images in order. */
export interface QwenSample {
  text: string;
  /** File paths, encoded image bytes, or decoded RGB images. */
  images: readonly (string | Uint8Array | DecodedImage)[];
}

export interface QwenProcessorOptions {
  /** Resizing implementation (default "pil": Pillow-exact; "sharp": faster, a few levels off). */
  backend?: ResizeBackend;
  /** Pixel limit when decoding (default image_decode's). */
  maxDecodePixels?: number;
}

export interface QwenPrepareOptions {
  /** Where padding goes (default "left", for generation). */
  padSide?: "left" | "right";
  /** Let the tokenizer add its special tokens (default false). */
  addSpecialTokens?: boolean;
}

/** A prepared batch. Tensors belong to the caller. */
export interface QwenBatch {
  /** int64 [B, T], padded with the tokenizer's pad id. */
  inputIds: Tensor;
  /** int64 [B, T]: 1 for tokens, 0 for padding. */
  attentionMask: Tensor;
  /** float32 [sum of patches, C*T*P*P] ([0, C*T*P*P] without images). */
  pixelValues: Tensor;
  /** int64 [numImages, 3] (t, h, w) per image, batch order. */
  imageGridThw: Tensor;
  /** The same grids as numbers. */
  grids: [number, number, number][];
  /** Image tokens per image. */
  numImageTokens: number[];
  imagesPerSample: number[];
  /** Tokens per sample before padding. */
  lengths: number[];
  /** The expanded texts that were tokenized. */
  texts: string[];
}

const isDecoded = (x: unknown): x is DecodedImage => typeof x === "object" && x !== null && !(x instanceof Uint8Array) && "data" in x && "width" in x;

export class QwenVLProcessor {
  readonly config: QwenImageProcessorConfig;
  readonly tokenizer: QwenTokenizer;
  readonly imageTokenId: number;
  private readonly opts: QwenProcessorOptions;

  constructor(config: QwenImageProcessorConfig, tokenizer: QwenTokenizer, opts: QwenProcessorOptions = {}) {
    this.config = config;
    this.tokenizer = tokenizer;
    this.opts = opts;
    const id = tokenizer.tokenToId(QWEN_VISION_TOKENS.imagePad);
    if (id === undefined) throw new Error(`QwenVLProcessor: the tokenizer has no ${QWEN_VISION_TOKENS.imagePad} token (a Qwen2-VL tokenizer has it as an added special token)`);
    this.imageTokenId = id;
  }

  /** Reads the image processor settings of a model folder. */
  static fromDir(dir: string, tokenizer: QwenTokenizer, opts: QwenProcessorOptions = {}): QwenVLProcessor {
    return new QwenVLProcessor(readQwenImageProcessorConfig(dir), tokenizer, opts);
  }

  private async load(src: string | Uint8Array | DecodedImage, label: string): Promise<DecodedImage> {
    if (isDecoded(src)) {
      checkDecodedImage(src, label);
      return src;
    }
    return decodeImage(src, { maxPixels: this.opts.maxDecodePixels, label: typeof src === "string" ? src : label });
  }

  async prepare(batch: readonly QwenSample[], opts: QwenPrepareOptions = {}): Promise<QwenBatch> {
    if (!Array.isArray(batch) || batch.length === 0) throw new Error("QwenVLProcessor.prepare: empty batch");
    const padSide = opts.padSide ?? "left";
    if (padSide !== "left" && padSide !== "right") throw new Error(`QwenVLProcessor.prepare: padSide must be "left" or "right", got ${String(padSide)}`);
    const pad = QWEN_VISION_TOKENS.imagePad;
    const imagesPerSample = batch.map((s, i) => {
      if (typeof s?.text !== "string" || !Array.isArray(s.images)) throw new Error(`QwenVLProcessor.prepare: sample ${i} must be {text: string, images: [...]}`);
      const markers = s.text.split(pad).length - 1;
      if (markers !== s.images.length) throw new Error(`QwenVLProcessor.prepare: sample ${i} has ${markers} ${pad} marker(s) in its text but ${s.images.length} image(s)`);
      return s.images.length;
    });
    const decoded: DecodedImage[] = [];
    for (let i = 0; i < batch.length; i++) for (let j = 0; j < batch[i].images.length; j++) decoded.push(await this.load(batch[i].images[j], `sample ${i} image ${j}`));

    const rowLen = 3 * this.config.temporalPatchSize * this.config.patchSize ** 2;
    const processed = decoded.length ? await processQwenImages(decoded, this.config, { backend: this.opts.backend }) : null;
    const pixelValues = processed?.pixelValues ?? tensor(new Float32Array(0), { shape: [0, rowLen] });
    const grids = processed?.imageGridThw ?? [];
    const counts = processed?.numImageTokens ?? [];

    const texts: string[] = [];
    const ids: number[][] = [];
    let k = 0;
    try {
      for (let i = 0; i < batch.length; i++) {
        const mine = counts.slice(k, k + imagesPerSample[i]);
        k += imagesPerSample[i];
        const text = expandImagePads(batch[i].text, mine);
        const tok = this.tokenizer.encode(text, { addSpecialTokens: opts.addSpecialTokens ?? false });
        const want = mine.reduce((a, b) => a + b, 0);
        const got = tok.reduce((a, t) => a + (t === this.imageTokenId ? 1 : 0), 0);
        if (got !== want) throw new Error(`QwenVLProcessor.prepare: sample ${i} tokenized to ${got} ${pad} ids (id ${this.imageTokenId}), expected ${want}; is ${pad} an added special token of the tokenizer?`);
        texts.push(text);
        ids.push(tok);
      }
    } catch (e) {
      pixelValues.dispose();
      throw e;
    }
    const lengths = ids.map((t) => t.length);
    const T = Math.max(...lengths);
    const padId = this.tokenizer.padTokenId;
    if (padId === undefined && lengths.some((l) => l !== T)) {
      pixelValues.dispose();
      throw new Error("QwenVLProcessor.prepare: samples differ in length and the tokenizer has no pad token (tokenizer_config.json pad_token)");
    }
    const B = batch.length;
    const idBuf = new BigInt64Array(B * T).fill(BigInt(padId ?? 0));
    const maskBuf = new BigInt64Array(B * T);
    for (let b = 0; b < B; b++) {
      const off = padSide === "left" ? T - ids[b].length : 0;
      ids[b].forEach((t, j) => {
        idBuf[b * T + off + j] = BigInt(t);
        maskBuf[b * T + off + j] = 1n;
      });
    }
    return {
      inputIds: tensor(idBuf, { shape: [B, T] }),
      attentionMask: tensor(maskBuf, { shape: [B, T] }),
      pixelValues,
      imageGridThw: tensor(BigInt64Array.from(grids.flat(), (v) => BigInt(v)), { shape: [grids.length, 3] }),
      grids,
      numImageTokens: counts,
      imagesPerSample,
      lengths,
      texts,
    };
  }
}
