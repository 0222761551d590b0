/**
 * Pixel sets produced by the drawing tools, as box bitmaps (see lib/rle.ts `BoxBitmap`).
 * A pixel (x, y) is covered when its centre (x + 0.5, y + 0.5) is inside the shape; all results
 * are clipped to the image (width x height). Null means nothing is covered.
 */
import type { Box, BoxBitmap } from "../lib/rle";

export function clipBox(b: Box, width: number, height: number): Box | null {
  const x0 = Math.max(0, b.x0);
  const y0 = Math.max(0, b.y0);
  const x1 = Math.min(width, b.x1);
  const y1 = Math.min(height, b.y1);
  return x1 > x0 && y1 > y0 ? { x0, y0, x1, y1 } : null;
}

export function unionBox(a: Box | null, b: Box | null): Box | null {
  if (!a) return b;
  if (!b) return a;
  return {
    x0: Math.min(a.x0, b.x0),
    y0: Math.min(a.y0, b.y0),
    x1: Math.max(a.x1, b.x1),
    y1: Math.max(a.y1, b.y1),
  };
}

export function intersectBox(a: Box, b: Box): Box | null {
  const x0 = Math.max(a.x0, b.x0);
  const y0 = Math.max(a.y0, b.y0);
  const x1 = Math.min(a.x1, b.x1);
  const y1 = Math.min(a.y1, b.y1);
  return x1 > x0 && y1 > y0 ? { x0, y0, x1, y1 } : null;
}

/**
 * Brush/eraser footprint of one pointer move: pixels whose centre lies within `radius` of the
 * segment (ax, ay)-(bx, by) in continuous image coordinates (a capsule; a disc when a == b).
 */
export function capsuleStamp(
  ax: number,
  ay: number,
  bx: number,
  by: number,
  radius: number,
  width: number,
  height: number,
): BoxBitmap | null {
  const r = Math.max(0.5, radius);
  const box = clipBox(
    {
      x0: Math.floor(Math.min(ax, bx) - r),
      y0: Math.floor(Math.min(ay, by) - r),
      x1: Math.ceil(Math.max(ax, bx) + r) + 1,
      y1: Math.ceil(Math.max(ay, by) + r) + 1,
    },
    width,
    height,
  );
  if (!box) return null;
  const bw = box.x1 - box.x0;
  const data = new Uint8Array(bw * (box.y1 - box.y0));
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const r2 = r * r;
  let any = false;
  for (let y = box.y0; y < box.y1; y++) {
    const py = y + 0.5;
    for (let x = box.x0; x < box.x1; x++) {
      const px = x + 0.5;
      let t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = px - (ax + t * dx);
      const ey = py - (ay + t * dy);
      if (ex * ex + ey * ey <= r2) {
        data[(y - box.y0) * bw + (x - box.x0)] = 1;
        any = true;
      }
    }
  }
  return any ? { box, data } : null;
}

/** Polygon fill with the even-odd rule. `points` are [x, y] vertices in image coordinates. */
export function polygonStamp(points: [number, number][], width: number, height: number): BoxBitmap | null {
  if (points.length < 3) return null;
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const [x, y] of points) {
    minX = Math.min(minX, x);
    minY = Math.min(minY, y);
    maxX = Math.max(maxX, x);
    maxY = Math.max(maxY, y);
  }
  const box = clipBox(
    { x0: Math.floor(minX), y0: Math.floor(minY), x1: Math.ceil(maxX) + 1, y1: Math.ceil(maxY) + 1 },
    width,
    height,
  );
  if (!box) return null;
  const bw = box.x1 - box.x0;
  const data = new Uint8Array(bw * (box.y1 - box.y0));
  const n = points.length;
  const xs: number[] = [];
  let any = false;
  for (let y = box.y0; y < box.y1; y++) {
    const py = y + 0.5;
    xs.length = 0;
    for (let i = 0, j = n - 1; i < n; j = i++) {
      const [xi, yi] = points[i];
      const [xj, yj] = points[j];
      if (yi > py !== yj > py) xs.push(xi + ((py - yi) * (xj - xi)) / (yj - yi));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      // Pixels whose centre x + 0.5 lies in [xs[k], xs[k+1]).
      const xa = Math.max(box.x0, Math.ceil(xs[k] - 0.5));
      const xb = Math.min(box.x1, Math.ceil(xs[k + 1] - 0.5));
      if (xb > xa) {
        data.fill(1, (y - box.y0) * bw + (xa - box.x0), (y - box.y0) * bw + (xb - box.x0));
        any = true;
      }
    }
  }
  return any ? { box, data } : null;
}

/** Image colour bound for a fill: pixels join only while their colour stays near the seed's. */
export interface ColorBound {
  /** RGBA pixels of the image, width x height, row-major (ImageData.data). */
  rgba: Uint8ClampedArray | Uint8Array;
  /** Largest per-channel difference (0..255) to the colour under the click that still joins. */
  tolerance: number;
}

/**
 * 4-connected region around (x, y) whose pixels share the label of (x, y) in `labels`
 * (a width x height row-major map, e.g. object ids with 0 = unlabeled) and, with `color`,
 * whose image colour is within the tolerance of the clicked pixel's colour (a magic wand).
 */
export function floodStamp(
  labels: Uint32Array | Uint16Array,
  width: number,
  height: number,
  x: number,
  y: number,
  color?: ColorBound,
): BoxBitmap | null {
  if (x < 0 || y < 0 || x >= width || y >= height) return null;
  const target = labels[y * width + x];
  const seen = new Uint8Array(width * height);
  const rgba = color && color.tolerance < 255 ? color.rgba : null;
  const tol = color?.tolerance ?? 255;
  const s = (y * width + x) * 4;
  const r0 = rgba ? rgba[s] : 0;
  const g0 = rgba ? rgba[s + 1] : 0;
  const b0 = rgba ? rgba[s + 2] : 0;
  const ok = (i: number): boolean => {
    if (seen[i] || labels[i] !== target) return false;
    if (!rgba) return true;
    const j = i * 4;
    return Math.abs(rgba[j] - r0) <= tol && Math.abs(rgba[j + 1] - g0) <= tol && Math.abs(rgba[j + 2] - b0) <= tol;
  };
  let x0 = x;
  let x1 = x + 1;
  let y0 = y;
  let y1 = y + 1;
  const stack: number[] = [x, y];
  // Scanline fill: fill a horizontal span, then queue the spans above and below.
  while (stack.length) {
    const sy = stack.pop()!;
    const sx = stack.pop()!;
    let row = sy * width;
    if (!ok(row + sx)) continue;
    let l = sx;
    while (l > 0 && ok(row + l - 1)) l--;
    let r = sx;
    while (r + 1 < width && ok(row + r + 1)) r++;
    seen.fill(1, row + l, row + r + 1);
    if (l < x0) x0 = l;
    if (r + 1 > x1) x1 = r + 1;
    if (sy < y0) y0 = sy;
    if (sy + 1 > y1) y1 = sy + 1;
    for (const ny of [sy - 1, sy + 1]) {
      if (ny < 0 || ny >= height) continue;
      row = ny * width;
      let inSpan = false;
      for (let i = l; i <= r; i++) {
        const good = ok(row + i);
        if (good && !inSpan) stack.push(i, ny);
        inSpan = good;
      }
    }
  }
  const bw = x1 - x0;
  const data = new Uint8Array(bw * (y1 - y0));
  for (let yy = y0; yy < y1; yy++) {
    const src = yy * width;
    const dst = (yy - y0) * bw - x0;
    for (let xx = x0; xx < x1; xx++) if (seen[src + xx]) data[dst + xx] = 1;
  }
  return { box: { x0, y0, x1, y1 }, data };
}
