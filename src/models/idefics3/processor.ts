// The Idefics3 (SmolVLM) processor: chat-templated texts with <image> markers
// plus their images -> padded token ids, attention mask and image tiles, as
// transformers' Idefics3Processor.__call__ does (image processor, prompt
// expansion, tokenizer, padding).
//
// Defaults follow TRL's GRPO call of the processor (padding_side="left",
// add_special_tokens=False: the chat template already holds the BOS text);
// transformers' bare processor call adds special tokens. Both are options.
import { tensor, type Tensor } from "../../torch/index.js";
import { checkDecodedImage, decodeImage, type DecodedImage } from "../../io/image_decode.js";
import { type Idefics3ImageProcessorConfig, readProcessorConfig } from "./image_processor_config.js";
import { processImages } from "./image_processor.js";
import { expandImageTokens, IDEFICS3_IMAGE_TOKENS, imageTokenCount, type ImageTokenStrings } from "./prompt.js";
import type { ResizeBackend } from "../../io/image_resample.js";

/** What the processor needs of a tokenizer (src/io/tokenizer.ts's HFTokenizer has it). */
export interface Idefics3Tokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  readonly padTokenId: number | undefined;
  tokenToId(token: string): number | undefined;
}

/** One sample: its text (already chat-templated, one <image> marker per image) and its images in marker order. */
export interface Idefics3Sample {
  text: string;
  /** File paths, encoded image bytes, or already decoded RGB images. */
  images: readonly (string | Uint8Array | DecodedImage)[];
}

export interface Idefics3ProcessorOptions {
  /** Resizing implementation (default "pil": Pillow-exact; "sharp": faster, a few levels off). */
  backend?: ResizeBackend;
  /** Pixel limit when decoding (default image_decode's DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  /** Token strings of the expansion (default <fake_token_around_image>, <image>, <global-img>). */
  tokens?: ImageTokenStrings;
}

export interface PrepareOptions {
  /** Where padding goes (default "left", for generation). */
  padSide?: "left" | "right";
  /** Let the tokenizer add its special tokens, e.g. BOS (default false; transformers' processor default is true). */
  addSpecialTokens?: boolean;
  /** Also return pixelAttentionMask (default false; all true, tiles are never padded). */
  returnPixelAttentionMask?: boolean;
}

/** A prepared batch. Tensors belong to the caller (dispose them, or create them inside a scope). */
export interface Idefics3Batch {
  /** int64 [B, T]: token ids, padded with the tokenizer's pad id. */
  inputIds: Tensor;
  /** int64 [B, T]: 1 for tokens, 0 for padding. */
  attentionMask: Tensor;
  /** float32 [N, 3, S, S]: the tiles of every image of every sample, in order ([0, 3, S, S] without images). */
  pixelValues: Tensor;
  /** bool [N, S, S] (all true), with returnPixelAttentionMask. */
  pixelAttentionMask?: Tensor;
  /** <image> tokens each image expands to ((rows * cols + 1) * imageSeqLen), images in batch order. */
  numImageTokensPerImage: number[];
  /** Tiles per image (rows * cols + 1, or 1), images in batch order. */
  tilesPerImage: number[];
  /** Images per sample. */
  imagesPerSample: number[];
  /** Tile grid per image. */
  rows: number[];
  cols: number[];
  /** Tokens per sample before padding. */
  lengths: number[];
  /** The expanded texts that were tokenized. */
  texts: string[];
  imageSeqLen: number;
}

const isDecoded = (x: unknown): x is DecodedImage => typeof x === "object" && x !== null && !(x instanceof Uint8Array) && "data" in x && "width" in x;

/** Idefics3Processor: image processor + prompt expansion + tokenizer. */
export class Idefics3Processor {
  readonly config: Idefics3ImageProcessorConfig;
  readonly tokenizer: Idefics3Tokenizer;
  readonly tokens: ImageTokenStrings;
  /** Id of the <image> token. */
  readonly imageTokenId: number;
  private readonly opts: Idefics3ProcessorOptions;

  constructor(config: Idefics3ImageProcessorConfig, tokenizer: Idefics3Tokenizer, opts: Idefics3ProcessorOptions = {}) {
    this.config = config;
    this.tokenizer = tokenizer;
    this.opts = opts;
    this.tokens = opts.tokens ?? IDEFICS3_IMAGE_TOKENS;
    const missing = [this.tokens.imageToken, this.tokens.fakeImageToken].filter((t) => tokenizer.tokenToId(t) === undefined);
    if (missing.length > 0) throw new Error(`Idefics3Processor: the tokenizer has no token ${missing.join(" / ")} (an Idefics3 tokenizer has them as added tokens)`);
    this.imageTokenId = tokenizer.tokenToId(this.tokens.imageToken)!;
  }

  /** Reads preprocessor_config.json / processor_config.json of a model folder. */
  static async fromDir(dir: string, tokenizer: Idefics3Tokenizer, opts: Idefics3ProcessorOptions = {}): Promise<Idefics3Processor> {
    return new Idefics3Processor(readProcessorConfig(dir), tokenizer, opts);
  }

  get imageSeqLen(): number {
    return this.config.imageSeqLen;
  }

  /** Decodes one image source (paths and bytes through decodeImage; decoded images are checked). */
  private async load(src: string | Uint8Array | DecodedImage, label: string): Promise<DecodedImage> {
    if (isDecoded(src)) {
      checkDecodedImage(src, label);
      return src;
    }
    return decodeImage(src, { maxPixels: this.opts.maxPixels, label: typeof src === "string" ? src : label });
  }

  /** Processes a batch: images -> tiles, texts expanded and tokenized, padded. */
  async prepare(batch: readonly Idefics3Sample[], opts: PrepareOptions = {}): Promise<Idefics3Batch> {
    if (!Array.isArray(batch) || batch.length === 0) throw new Error("Idefics3Processor.prepare: empty batch");
    const padSide = opts.padSide ?? "left";
    if (padSide !== "left" && padSide !== "right") throw new Error(`Idefics3Processor.prepare: padSide must be "left" or "right", got ${String(padSide)}`);
    const seq = this.config.imageSeqLen;

    // Markers first, so a count mismatch fails before any decoding.
    const imagesPerSample = batch.map((s, i) => {
      if (typeof s?.text !== "string" || !Array.isArray(s.images)) throw new Error(`Idefics3Processor.prepare: sample ${i} must be {text: string, images: [...]}`);
      const markers = s.text.split(this.tokens.imageToken).length - 1;
      if (markers !== s.images.length) {
        throw new Error(`Idefics3Processor.prepare: sample ${i} has ${markers} ${this.tokens.imageToken} marker(s) in its text but ${s.images.length} image(s)`);
      }
      return s.images.length;
    });

    const decoded: DecodedImage[] = [];
    for (let i = 0; i < batch.length; i++) {
      for (let j = 0; j < batch[i].images.length; j++) decoded.push(await this.load(batch[i].images[j], `sample ${i} image ${j}`));
    }

    let rows: number[] = [];
    let cols: number[] = [];
    let tilesPerImage: number[] = [];
    let pixelValues: Tensor;
    let pixelAttentionMask: Tensor | undefined;
    const S = this.config.maxImageSize;
    if (decoded.length > 0) {
      const p = await processImages(decoded, this.config, { backend: this.opts.backend, returnPixelAttentionMask: opts.returnPixelAttentionMask });
      ({ rows, cols, tilesPerImage, pixelValues, pixelAttentionMask } = p);
    } else {
      pixelValues = tensor(new Float32Array(0), { shape: [0, 3, S, S] });
      if (opts.returnPixelAttentionMask) pixelAttentionMask = tensor(new Uint8Array(0), { shape: [0, S, S], dtype: "bool" });
    }

    const texts: string[] = [];
    const ids: number[][] = [];
    let k = 0;
    for (let i = 0; i < batch.length; i++) {
      const n = imagesPerSample[i];
      const r = rows.slice(k, k + n);
      const c = cols.slice(k, k + n);
      k += n;
      const text = expandImageTokens(batch[i].text, r, c, seq, this.tokens);
      const tok = this.tokenizer.encode(text, { addSpecialTokens: opts.addSpecialTokens ?? false });
      // The expansion must survive tokenization as single <image> ids.
      const want = r.reduce((a, _, j) => a + imageTokenCount(r[j], c[j], seq), 0);
      const got = tok.reduce((a, t) => a + (t === this.imageTokenId ? 1 : 0), 0);
      if (got !== want) {
        pixelValues.dispose();
        pixelAttentionMask?.dispose();
        throw new Error(`Idefics3Processor.prepare: sample ${i} tokenized to ${got} ${this.tokens.imageToken} ids (id ${this.imageTokenId}), expected ${want}; is ${this.tokens.imageToken} an added special token of the tokenizer?`);
      }
      texts.push(text);
      ids.push(tok);
    }

    const lengths = ids.map((t) => t.length);
    const T = Math.max(...lengths);
    const padId = this.tokenizer.padTokenId;
    if (padId === undefined && lengths.some((l) => l !== T)) {
      pixelValues.dispose();
      pixelAttentionMask?.dispose();
      throw new Error("Idefics3Processor.prepare: samples differ in length and the tokenizer has no pad token (tokenizer_config.json pad_token)");
    }
    const B = batch.length;
    const idBuf = new BigInt64Array(B * T);
    const maskBuf = new BigInt64Array(B * T);
    for (let b = 0; b < B; b++) {
      const t = ids[b];
      const off = padSide === "left" ? T - t.length : 0;
      for (let j = 0; j < T; j++) idBuf[b * T + j] = BigInt(padId ?? 0);
      for (let j = 0; j < t.length; j++) {
        idBuf[b * T + off + j] = BigInt(t[j]);
        maskBuf[b * T + off + j] = 1n;
      }
    }
    const out: Idefics3Batch = {
      inputIds: tensor(idBuf, { shape: [B, T] }),
      attentionMask: tensor(maskBuf, { shape: [B, T] }),
      pixelValues,
      numImageTokensPerImage: rows.map((r, j) => imageTokenCount(r, cols[j], seq)),
      tilesPerImage,
      imagesPerSample,
      rows,
      cols,
      lengths,
      texts,
      imageSeqLen: seq,
    };
    if (pixelAttentionMask) out.pixelAttentionMask = pixelAttentionMask;
    return out;
  }
}
