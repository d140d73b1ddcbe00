// Small inline JPEG thumbnails for the HTML report, made with sharp. Images
// labelled offensive are blurred by default so a report can be shared and
// read without exposing reviewers to the content; `blur: false` turns it off.
import sharp from "sharp";

/** Options of {@link makeThumbnail}. */
export interface ThumbnailOptions {
  /** Longest side in px. Default 128. */
  size?: number;
  /** Apply a Gaussian blur. Default false. */
  blur?: boolean;
  /** Blur strength (Gaussian sigma in px of the thumbnail, 0.3-1000). Default 10. */
  sigma?: number;
  /** JPEG quality 1-100. Default 70. */
  quality?: number;
}

/** A JPEG thumbnail of `input` (a path or encoded image bytes), fitted inside size x size. */
export async function makeThumbnail(input: string | Buffer, opts: ThumbnailOptions = {}): Promise<Buffer> {
  const size = opts.size ?? 128;
  let img = sharp(input, { failOn: "error" })
    .rotate() // honour EXIF orientation
    .resize(size, size, { fit: "inside" })
    .flatten({ background: "#ffffff" });
  if (opts.blur) img = img.blur(opts.sigma ?? 10);
  return img.jpeg({ quality: opts.quality ?? 70 }).toBuffer();
}

/** A thumbnail as a data URI, or the reason it could not be made (a missing or unreadable file). */
export async function thumbnailDataUri(input: string | Buffer, opts: ThumbnailOptions = {}): Promise<{ uri: string } | { error: string }> {
  try {
    const jpeg = await makeThumbnail(input, opts);
    return { uri: `data:image/jpeg;base64,${jpeg.toString("base64")}` };
  } catch (e) {
    const where = typeof input === "string" ? input : "image bytes";
    return { error: `${where}: ${(e as Error).message}` };
  }
}
