// Checks an uploaded image before it may reach the model queue: the header
// (format and size) is read first, so an image bomb is refused by its
// declared dimensions without decoding a pixel; then the image is decoded
// once, within a time limit, so that a truncated or corrupt file is refused
// with a 4xx here rather than failing inside a batch. Errors carry the HTTP
// status the route answers with.
import sharp, { type Metadata } from "sharp";
import { SUPPORTED_IMAGE_FORMATS } from "../io/image_decode.js";
// Not runWithOwnErrors here: its retry waits until no other decode is in
// flight, so a stream of corrupt uploads would serialize every decode of the
// server. A reason may then carry another upload's libvips line (vips_errors.ts).
import { vipsReason } from "../io/vips_errors.js";

export class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface ImageLimits {
  maxPixels: number;
  decodeTimeoutMs: number;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RequestError(422, "decode_timeout", `${what}: decoding took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Refuses bytes that are not a supported, complete image within the limits; the error names the image and the problem. */
export async function checkImageBytes(bytes: Uint8Array, label: string, limits: ImageLimits): Promise<{ width: number; height: number; format: string }> {
  if (bytes.byteLength === 0) throw new RequestError(400, "empty_image", `${label}: empty image (0 bytes)`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let meta: Metadata;
  try {
    meta = await withTimeout(sharp(buf, { limitInputPixels: false }).metadata(), limits.decodeTimeoutMs, label);
  } catch (e) {
    if (e instanceof RequestError) throw e;
    throw new RequestError(400, "not_an_image", `${label}: not a readable image (${vipsReason(e)})`);
  }
  const format = meta.format ?? "unknown";
  if (!SUPPORTED_IMAGE_FORMATS.includes(format)) throw new RequestError(415, "unsupported_format", `${label}: image format '${format}' is not supported (${SUPPORTED_IMAGE_FORMATS.join(", ")})`);
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (!(width > 0 && height > 0)) throw new RequestError(400, "not_an_image", `${label}: the header gives no image size`);
  if (width * height > limits.maxPixels) {
    throw new RequestError(413, "too_many_pixels", `${label}: ${width}x${height} = ${width * height} pixels exceeds the limit of ${limits.maxPixels} (serve.max_pixels)`);
  }
  try {
    // failOn "truncated": a cut-off file is an error, not a grey tail.
    await withTimeout(sharp(buf, { limitInputPixels: limits.maxPixels, failOn: "truncated" }).raw().toBuffer(), limits.decodeTimeoutMs, label);
  } catch (e) {
    if (e instanceof RequestError) throw e;
    throw new RequestError(422, "corrupt_image", `${label}: the image could not be decoded (truncated or corrupt: ${vipsReason(e)})`);
  }
  return { width, height, format };
}

/** The bytes of a base64 string or a data: URI (data:image/png;base64,...). */
export function bytesFromBase64(data: unknown, label: string): Uint8Array {
  if (typeof data !== "string" || data.length === 0) throw new RequestError(400, "bad_request", `${label}: expected a base64 string or a data: URI`);
  let b64 = data;
  if (data.startsWith("data:")) {
    const m = /^data:[^;,]*(;[^,]*)?,/.exec(data);
    if (!m || !(m[1] ?? "").includes("base64")) throw new RequestError(400, "bad_request", `${label}: a data URI must be base64-encoded (data:image/...;base64,...)`);
    b64 = data.slice(m[0].length);
  }
  const clean = b64.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw new RequestError(400, "bad_base64", `${label}: not valid base64`);
  return new Uint8Array(Buffer.from(clean, "base64"));
}
