/**
 * COCO run-length encoding, byte-identical to pycocotools (maskApi.c).
 *
 * Layout facts:
 * - A mask of size [H, W] is flattened in column-major (Fortran) order: index = x * H + y.
 * - Uncompressed counts alternate runs of 0 and 1, starting with 0 (a mask whose first pixel is
 *   set starts with a zero-length run).
 * - The compressed string stores each count (from the 4th on, as the difference to the count two
 *   places earlier) in 5-bit groups, least significant first, each group offset by 48 ('0'),
 *   bit 0x20 = "more groups follow", bit 0x10 of the last group = sign.
 */

/** A COCO RLE object as carried by the API: `{size: [H, W], counts: "<compressed string>"}`. */
export interface CocoRle {
  size: [number, number];
  counts: string;
}

/** Axis-aligned box in pixel coordinates, `x1`/`y1` exclusive. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** A binary mask cropped to its bounding box: `data` is (y1-y0) x (x1-x0) bytes, row-major, 0/1. */
export interface BoxBitmap {
  box: Box;
  data: Uint8Array;
}

/** Compress uncompressed counts to COCO's ASCII string (pycocotools `rleToString`). */
export function countsToString(counts: ArrayLike<number>): string {
  const out: number[] = [];
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    let more = true;
    while (more) {
      // Arithmetic on numbers (not 32-bit ops) keeps this exact for any count below 2^53.
      let c = ((x % 32) + 32) % 32;
      x = Math.floor(x / 32);
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out.push(c + 48);
    }
  }
  // Chunked to stay clear of argument-count limits on large masks.
  let s = "";
  for (let i = 0; i < out.length; i += 8192) {
    s += String.fromCharCode(...out.slice(i, i + 8192));
  }
  return s;
}

/** Decompress COCO's ASCII string to uncompressed counts (pycocotools `rleFrString`). */
export function stringToCounts(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error("truncated RLE string");
      const c = s.charCodeAt(p) - 48;
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x -= 2 ** (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/**
 * Uncompressed counts of a full-size mask given in column-major order (pycocotools `rleEncode`).
 * @param colMajor H*W bytes, index x*H + y; any non-zero value counts as set.
 */
export function encodeColumnMajor(colMajor: ArrayLike<number>): number[] {
  const counts: number[] = [];
  let p = 0;
  let c = 0;
  for (let j = 0; j < colMajor.length; j++) {
    const v = colMajor[j] ? 1 : 0;
    if (v !== p) {
      counts.push(c);
      c = 0;
      p = v;
    }
    c++;
  }
  counts.push(c);
  return counts;
}

/** Uncompressed counts of a row-major mask (H x W bytes, index y*W + x). */
export function encodeRowMajor(rowMajor: ArrayLike<number>, h: number, w: number): number[] {
  return encodeBoxBitmap({ box: { x0: 0, y0: 0, x1: w, y1: h }, data: toUint8(rowMajor) }, h, w);
}

function toUint8(a: ArrayLike<number>): Uint8Array {
  return a instanceof Uint8Array ? a : Uint8Array.from(a as ArrayLike<number>);
}

/**
 * Uncompressed counts of a box-cropped mask placed in an H x W image, without building the full
 * image: O(box area) time.
 */
export function encodeBoxBitmap(bm: BoxBitmap, h: number, w: number): number[] {
  const { x0, y0, x1, y1 } = bm.box;
  const bw = x1 - x0;
  const counts: number[] = [];
  let p = 0; // value of the current run
  let c = 0; // length of the current run
  const zeros = (n: number): void => {
    if (n <= 0) return;
    if (p !== 0) {
      counts.push(c);
      c = 0;
      p = 0;
    }
    c += n;
  };
  zeros(x0 * h); // columns left of the box
  for (let x = x0; x < x1; x++) {
    zeros(y0); // rows above the box in this column
    let idx = x - x0;
    for (let y = y0; y < y1; y++, idx += bw) {
      const v = bm.data[idx] ? 1 : 0;
      if (v !== p) {
        counts.push(c);
        c = 0;
        p = v;
      }
      c++;
    }
    zeros(h - y1); // rows below the box
  }
  zeros((w - x1) * h); // columns right of the box
  counts.push(c);
  return counts;
}

/** Decode uncompressed counts to a full-size column-major mask (H*W bytes, 0/1). */
export function decodeToColumnMajor(counts: ArrayLike<number>, h: number, w: number): Uint8Array {
  const out = new Uint8Array(h * w);
  let pos = 0;
  let v = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i];
    if (pos + n > out.length) throw new Error("RLE counts exceed mask size");
    if (v) out.fill(1, pos, pos + n);
    pos += n;
    v ^= 1;
  }
  if (pos !== out.length) throw new Error(`RLE counts sum to ${pos}, expected ${h * w}`);
  return out;
}

/** Decode uncompressed counts to a full-size row-major mask (H x W bytes, 0/1). */
export function decodeToRowMajor(counts: ArrayLike<number>, h: number, w: number): Uint8Array {
  const out = new Uint8Array(h * w);
  forEachRun(counts, h, w, (x, y0, y1) => {
    for (let y = y0; y < y1; y++) out[y * w + x] = 1;
  });
  return out;
}

/**
 * Call `fn(x, yStart, yEnd)` for every vertical run of set pixels (yEnd exclusive), column by column.
 * Validates that counts sum to H*W.
 */
export function forEachRun(
  counts: ArrayLike<number>,
  h: number,
  w: number,
  fn: (x: number, y0: number, y1: number) => void,
): void {
  let pos = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i];
    if (n < 0) throw new Error("negative RLE count");
    if (i & 1) {
      let start = pos;
      const end = pos + n;
      while (start < end) {
        const x = Math.floor(start / h);
        const y = start - x * h;
        const yEnd = Math.min(h, y + (end - start));
        fn(x, y, yEnd);
        start += yEnd - y;
      }
    }
    pos += n;
  }
  if (pos !== h * w) throw new Error(`RLE counts sum to ${pos}, expected ${h * w}`);
}

/** Number of set pixels (pycocotools `area`). */
export function countsArea(counts: ArrayLike<number>): number {
  let a = 0;
  for (let i = 1; i < counts.length; i += 2) a += counts[i];
  return a;
}

/** Tight box of set pixels (x1/y1 exclusive), or null when the mask is empty. */
export function countsBox(counts: ArrayLike<number>, h: number, w: number): Box | null {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  forEachRun(counts, h, w, (x, ya, yb) => {
    if (x < x0) x0 = x;
    if (x + 1 > x1) x1 = x + 1;
    if (ya < y0) y0 = ya;
    if (yb > y1) y1 = yb;
  });
  return x0 === Infinity ? null : { x0, y0, x1, y1 };
}

/** Decode straight to a box-cropped bitmap (no full-size buffer); null when empty. */
export function decodeToBoxBitmap(counts: ArrayLike<number>, h: number, w: number): BoxBitmap | null {
  const box = countsBox(counts, h, w);
  if (!box) return null;
  const bw = box.x1 - box.x0;
  const data = new Uint8Array(bw * (box.y1 - box.y0));
  forEachRun(counts, h, w, (x, ya, yb) => {
    for (let y = ya; y < yb; y++) data[(y - box.y0) * bw + (x - box.x0)] = 1;
  });
  return { box, data };
}

/** Encode a box bitmap to the API's RLE object. */
export function boxBitmapToRle(bm: BoxBitmap, h: number, w: number): CocoRle {
  return { size: [h, w], counts: countsToString(encodeBoxBitmap(bm, h, w)) };
}

/** Decode the API's RLE object to a box bitmap (null when empty). */
export function rleToBoxBitmap(rle: CocoRle): BoxBitmap | null {
  const [h, w] = rle.size;
  return decodeToBoxBitmap(stringToCounts(rle.counts), h, w);
}
