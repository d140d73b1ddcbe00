// INTERIM (lead): minimal Idefics3 image path without splitting, until the full processor lands.
import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { type Tensor, tensor } from "../torch/index.js";

export interface DecodedImage { data: Uint8Array; width: number; height: number }
export interface Idefics3ImageProcessorConfig { imageSize: number; mean: number[]; std: number[]; rescale: number; imageSeqLen: number }

export async function decodeImage(src: string | Uint8Array, opts: { maxPixels?: number; label?: string } = {}): Promise<DecodedImage> {
  const label = opts.label ?? (typeof src === "string" ? src : "<bytes>");
  try {
    const { data, info } = await sharp(src, { limitInputPixels: opts.maxPixels ?? 64e6 }).rotate().flatten({ background: "#ffffff" }).toColourspace("srgb").removeAlpha().raw().toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (e) {
    throw new Error(`${label}: cannot decode image: ${(e as Error).message}`);
  }
}

export function readProcessorConfig(dir: string): Idefics3ImageProcessorConfig {
  const pre = JSON.parse(fs.readFileSync(path.join(dir, "preprocessor_config.json"), "utf8"));
  const proc = fs.existsSync(path.join(dir, "processor_config.json")) ? JSON.parse(fs.readFileSync(path.join(dir, "processor_config.json"), "utf8")) : {};
  return { imageSize: pre.max_image_size?.longest_edge ?? 364, mean: pre.image_mean ?? [0.5, 0.5, 0.5], std: pre.image_std ?? [0.5, 0.5, 0.5], rescale: pre.rescale_factor ?? 1 / 255, imageSeqLen: proc.image_seq_len ?? 64 };
}

export async function writeProcessorFiles(dir: string, o: { imageSize: number; imageSeqLen: number; doImageSplitting: boolean; longestEdge?: number }): Promise<void> {
  fs.writeFileSync(path.join(dir, "preprocessor_config.json"), JSON.stringify({ image_processor_type: "Idefics3ImageProcessor", do_convert_rgb: true, do_resize: true, size: { longest_edge: o.longestEdge ?? 4 * o.imageSize }, resample: 1, do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], do_image_splitting: o.doImageSplitting, max_image_size: { longest_edge: o.imageSize }, do_pad: true, processor_class: "Idefics3Processor" }, null, 2));
  fs.writeFileSync(path.join(dir, "processor_config.json"), JSON.stringify({ image_seq_len: o.imageSeqLen, processor_class: "Idefics3Processor" }, null, 2));
}

export function processImagesSync(images: { data: Uint8Array; width: number; height: number; resized?: Uint8Array }[], cfg: Idefics3ImageProcessorConfig): { pixelValues: Tensor; rows: number[]; cols: number[] } {
  const S = cfg.imageSize;
  const out = new Float32Array(images.length * 3 * S * S);
  images.forEach((im, n) => {
    const px = im.resized!;
    for (let c = 0; c < 3; c++) for (let i = 0; i < S * S; i++) out[n * 3 * S * S + c * S * S + i] = (px[i * 3 + c] * cfg.rescale - cfg.mean[c]) / cfg.std[c];
  });
  return { pixelValues: tensor(out, { shape: [images.length, 3, S, S] }), rows: images.map(() => 0), cols: images.map(() => 0) };
}

export async function resizeSquare(im: DecodedImage, S: number): Promise<DecodedImage & { resized: Uint8Array }> {
  const buf = await sharp(Buffer.from(im.data), { raw: { width: im.width, height: im.height, channels: 3 } }).resize(S, S, { fit: "fill", kernel: "lanczos3" }).raw().toBuffer();
  return { ...im, resized: new Uint8Array(buf) };
}

export function expandImageTokens(text: string, rows: number[], cols: number[], seq: number): string {
  const parts = text.split("<image>");
  if (parts.length - 1 !== rows.length) throw new Error(`expandImageTokens: ${parts.length - 1} <image> markers but ${rows.length} images`);
  let out = parts[0];
  for (let i = 0; i < rows.length; i++) out += `<fake_token_around_image><global-img>${"<image>".repeat(seq)}<fake_token_around_image>` + parts[i + 1];
  return out;
}
