// Turns dataset examples into model inputs for any registered family: the
// chat-templated prompt with each image marker expanded as the family's
// processor does, the family's image tensors, and (for SFT) the target
// answer's ids. Prompt and answer are tokenized separately and concatenated,
// as TRL does for prompt-completion data, so SFT sees exactly the token
// boundary GRPO's generation continues from.
// Processed images are cached per example id and image source (the path, or
// the file and row of embedded bytes: one encoder may see two datasets whose
// ids overlap), in image_cache.ts (a byte budget,
// least-recently-used eviction, exact compact storage): the same image is not
// decoded and resized again every epoch. encodePrompt hands out new tensors
// (aliases or rebuilt from the compact form), so a caller owns what it gets
// (disposeEncoded) and the cache can drop entries whenever it likes.
import { buildMessages, type ChatMessage, type PromptConfig, targetAnswer } from "../data/prompt.js";
import type { Example } from "../data/types.js";
import { decodeImage } from "../io/image_decode.js";
import type { HFTokenizer } from "../io/tokenizer.js";
import { expandImageMarkers, type ProcessedImages, type VlmImageProcessor } from "../models/processor.js";
import { disposeImageInputs, type ImageInputs } from "../models/vlm.js";
import { flipHorizontal } from "./augment.js";
import { autoImageCacheBytes, ImageCache, type ImageCacheStats } from "./image_cache.js";

export interface EncodedPrompt {
  /** The example's id. */
  id: string;
  /** Prompt token ids (chat template with generation prompt, image markers expanded). */
  ids: number[];
  /** This example's image tensors (the caller owns these handles). */
  images: ImageInputs | null;
  /** How many image-token ids `ids` holds (rows of the image features). */
  imageTokens: number;
}

/** Frees the image handles of encoded prompts. */
export function disposeEncoded(list: readonly EncodedPrompt[]): void {
  for (const e of list) disposeImageInputs(e.images);
}

export interface PromptEncoderOptions {
  tokenizer: HFTokenizer;
  /** The family's image processor (models/processor.ts). */
  images: VlmImageProcessor;
  prompt: PromptConfig;
  /** Refuse images with more pixels than this (decompression bombs). Default image_decode's. */
  maxPixels?: number;
  /**
   * Cache processed images per example id: false = no cache; true (default) =
   * a budget of autoImageCacheBytes(); or the budget and storage explicitly.
   */
  cache?: boolean | PromptCacheOptions;
}

export interface PromptCacheOptions {
  /** Byte budget (0 = no cache). */
  maxBytes: number;
  /** Exact palette storage of pixel tensors (default true). */
  compact?: boolean;
}

interface CachedImage {
  processed: ProcessedImages;
  /** Token ids of the expanded prompt. */
  ids: number[];
}

/** What the cache keeps beside an example's tensors. */
interface CachedMeta {
  ids: number[];
  imageTokenCounts: number[];
}

export class PromptEncoder {
  readonly tokenizer: HFTokenizer;
  private readonly opts: PromptEncoderOptions;
  private readonly cache: ImageCache<CachedMeta>;
  private readonly promptTemplate: string;
  /** Ids that end an answer: the tokenizer's EOS (the chat template's end of turn). */
  readonly eosTokenIds: number[];
  /** Image placeholder ids a completion must never contain (the family's processor names them). */
  readonly suppressTokenIds: number[];

  constructor(opts: PromptEncoderOptions) {
    this.opts = opts;
    this.tokenizer = opts.tokenizer;
    const c = opts.cache ?? true;
    const cacheOpts = typeof c === "object" ? c : { maxBytes: c ? autoImageCacheBytes() : 0 };
    // A prompt's ids cost 8 bytes each as JS numbers in an array.
    this.cache = new ImageCache<CachedMeta>({ ...cacheOpts, metaBytes: (m) => (m as CachedMeta).ids.length * 8 + 64 });
    this.promptTemplate = opts.tokenizer.applyChatTemplate(buildMessages(opts.prompt), { addGenerationPrompt: true });
    const eos = opts.tokenizer.eosTokenId;
    if (eos === undefined) throw new Error("PromptEncoder: the tokenizer has no EOS token (tokenizer_config.json eos_token)");
    this.eosTokenIds = [eos];
    this.suppressTokenIds = [...opts.images.suppressTokenIds];
    if (!this.promptTemplate.includes(opts.images.imageMarker)) {
      throw new Error(`PromptEncoder: the chat template did not render the image marker '${opts.images.imageMarker}' for the image part`);
    }
  }

  /** The chat-templated prompt text before image expansion (one marker per image). */
  get templateText(): string {
    return this.promptTemplate;
  }

  /** Decodes and processes images, expands `text`'s markers and tokenizes it (nothing cached). */
  private async encodeText(text: string, sources: readonly (string | Uint8Array)[], label: string, mirror = false): Promise<CachedImage> {
    const decoded = [];
    for (const [i, src] of sources.entries()) {
      const img = await decodeImage(src, { maxPixels: this.opts.maxPixels, label: typeof src === "string" ? src : `${label} image ${i}` });
      decoded.push(mirror ? flipHorizontal(img) : img);
    }
    const processed = await this.opts.images.process(decoded);
    try {
      const expanded = expandImageMarkers(text, this.opts.images.imageMarker, processed.expansions, `prompt of ${label}`);
      const ids = this.tokenizer.encode(expanded, { addSpecialTokens: false });
      const want = processed.imageTokenCounts.reduce((a, b) => a + b, 0);
      const got = ids.reduce((a, t) => a + (t === this.opts.images.imageTokenId ? 1 : 0), 0);
      if (got !== want) throw new Error(`prompt of ${label}: tokenized to ${got} image tokens (id ${this.opts.images.imageTokenId}), expected ${want}; is the image marker an added special token of the tokenizer?`);
      return { processed, ids };
    } catch (e) {
      disposeImageInputs(processed.inputs);
      throw e;
    }
  }

  /**
   * Any chat (e.g. a user's own question) with its images (paths or encoded
   * bytes, in the order of the messages' image parts), as a generation
   * prompt. Not cached; the caller owns the result (disposeEncoded).
   */
  async encodeChat(messages: ChatMessage[], images: readonly (string | Uint8Array)[], id = "chat"): Promise<EncodedPrompt> {
    const text = this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
    if (images.length === 0) {
      expandImageMarkers(text, this.opts.images.imageMarker, [], `prompt of ${id}`); // no marker without an image
      return { id, ids: this.tokenizer.encode(text, { addSpecialTokens: false }), images: null, imageTokens: 0 };
    }
    const c = await this.encodeText(text, images, id);
    return { id, ids: c.ids, images: c.processed.inputs, imageTokens: sum(c.processed.imageTokenCounts) };
  }

  /**
   * The prompt ids and image tensors of one example (the caller owns the image
   * handles: disposeEncoded); `mirror`: its image flipped left to right (SFT's
   * augmentation), cached apart from the unflipped one.
   */
  async encodePrompt(ex: Example, opts: { mirror?: boolean } = {}): Promise<EncodedPrompt> {
    const mirror = opts.mirror === true;
    const label = "path" in ex.image ? ex.image.path : `${ex.source.file}${ex.source.row !== undefined ? `#${ex.source.row}` : ""}`;
    // Ids are unique within a dataset only: the key names the image's source too.
    const key = `${ex.id}\u0000${label}${mirror ? "\u0000mirrored" : ""}`;
    const hit = this.cache.get(key);
    if (hit) return { id: ex.id, ids: hit.meta.ids, images: hit.inputs, imageTokens: sum(hit.meta.imageTokenCounts) };
    const src = "path" in ex.image ? ex.image.path : ex.image.bytes;
    const c = await this.encodeText(this.promptTemplate, [src], label, mirror);
    try {
      this.cache.put(key, { ids: c.ids, imageTokenCounts: c.processed.imageTokenCounts }, c.processed.inputs);
    } catch (e) {
      disposeImageInputs(c.processed.inputs);
      throw e;
    }
    return { id: ex.id, ids: c.ids, images: c.processed.inputs, imageTokens: sum(c.processed.imageTokenCounts) };
  }

  /** The SFT target: the canonical answer then the end-of-turn token. */
  targetIds(labels: readonly string[]): number[] {
    const ids = this.tokenizer.encode(targetAnswer(labels, this.opts.prompt.categories), { addSpecialTokens: false });
    return [...ids, ...this.eosTokenIds];
  }

  /** Frees the cached image tensors (call when done). */
  dispose(): void {
    this.cache.clear();
  }

  /** How many examples' images are cached. */
  cachedCount(): number {
    return this.cache.stats().entries;
  }

  /** The image cache's size, budget, hit rate and evictions. */
  cacheStats(): ImageCacheStats {
    return this.cache.stats();
  }
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
