// The Idefics3 processor's prompt expansion (processing_idefics3.py): each
// <image> marker of an already chat-templated text is replaced by the token
// strings its image stands for.
//
// A split image (rows x cols tiles), for seq = image_seq_len:
//   for each row r: for each col c: <fake_token_around_image><row_r_col_c><image>*seq
//                   then "\n"
//   then "\n<fake_token_around_image><global-img><image>*seq<fake_token_around_image>"
// A single image (rows = cols = 0):
//   <fake_token_around_image><global-img><image>*seq<fake_token_around_image>
// (The tile rows end without a closing fake token: the next tile's opening
// one, or the "\n", follows directly, exactly as transformers builds it.)

/** The special token strings of the expansion. */
export interface ImageTokenStrings {
  fakeImageToken: string;
  imageToken: string;
  globalImageToken: string;
}

export const IDEFICS3_IMAGE_TOKENS: Readonly<ImageTokenStrings> = Object.freeze({
  fakeImageToken: "<fake_token_around_image>",
  imageToken: "<image>",
  globalImageToken: "<global-img>",
});

/** The tile-position token of row r, column c (1-based), e.g. "<row_1_col_2>". */
export function tilePositionToken(row: number, col: number): string {
  return `<row_${row}_col_${col}>`;
}

function checkGrid(rows: number, cols: number, seq: number, where: string): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || (rows === 0) !== (cols === 0)) {
    throw new Error(`${where}: rows and cols must be non-negative integers, both 0 or both positive; got ${rows} x ${cols}`);
  }
  if (!Number.isInteger(seq) || seq < 1) throw new Error(`${where}: imageSeqLen must be a positive integer, got ${seq}`);
}

/** The text one image stands for (transformers' get_image_prompt_string). */
export function imagePromptString(rows: number, cols: number, imageSeqLen: number, tokens: ImageTokenStrings = IDEFICS3_IMAGE_TOKENS): string {
  checkGrid(rows, cols, imageSeqLen, "imagePromptString");
  const { fakeImageToken: fake, imageToken, globalImageToken } = tokens;
  const block = imageToken.repeat(imageSeqLen);
  const global = `${fake}${globalImageToken}${block}${fake}`;
  if (rows === 0) return global;
  const lines: string[] = [];
  for (let r = 1; r <= rows; r++) {
    let line = "";
    for (let c = 1; c <= cols; c++) line += `${fake}${tilePositionToken(r, c)}${block}`;
    lines.push(`${line}\n`);
  }
  return `${lines.join("")}\n${global}`;
}

/** How many times `imageToken` occurs in one image's expansion: (rows * cols + 1) * imageSeqLen. */
export function imageTokenCount(rows: number, cols: number, imageSeqLen: number): number {
  checkGrid(rows, cols, imageSeqLen, "imageTokenCount");
  return (rows * cols + 1) * imageSeqLen;
}

/**
 * Replaces the i-th `<image>` marker of `text` by image i's expansion. The
 * number of markers must equal the number of images (rows.length).
 */
export function expandImageTokens(
  text: string,
  rows: readonly number[],
  cols: readonly number[],
  imageSeqLen: number,
  tokens: ImageTokenStrings = IDEFICS3_IMAGE_TOKENS,
): string {
  if (typeof text !== "string") throw new Error(`expandImageTokens: text must be a string, got ${typeof text}`);
  if (rows.length !== cols.length) throw new Error(`expandImageTokens: ${rows.length} row counts but ${cols.length} column counts`);
  const parts = text.split(tokens.imageToken);
  const markers = parts.length - 1;
  if (markers !== rows.length) {
    throw new Error(`expandImageTokens: the text has ${markers} ${tokens.imageToken} marker(s) but ${rows.length} image(s) were given`);
  }
  let out = parts[0];
  for (let i = 0; i < markers; i++) out += imagePromptString(rows[i], cols[i], imageSeqLen, tokens) + parts[i + 1];
  return out;
}
