/**
 * The Fill tool's rule, DOM-free: the connected region under the click, bounded by mask
 * outlines and by image colour within a tolerance (magic wand); another object's pixels are
 * only taken when the user chose to ("Fill over other objects").
 */
import type { BoxBitmap } from "../lib/rle";
import { floodStamp, type ColorBound } from "./stamps";

export type FillPlan =
  | { kind: "fill"; stamp: BoxBitmap; area: number }
  /** The click is on another object and overwriting was not chosen. */
  | { kind: "refused"; owner: number }
  /** Nothing to do (the click is on the object being filled). */
  | { kind: "none" };

export function planFill(o: {
  /** Object id per pixel (0 = unlabeled), width x height (MaskDocument.ownerMap()). */
  labels: Uint32Array;
  width: number;
  height: number;
  x: number;
  y: number;
  /** The object the fill would go to when it exists already (the selected one), else null. */
  target: number | null;
  overwrite: boolean;
  color?: ColorBound;
}): FillPlan {
  const owner = o.labels[o.y * o.width + o.x];
  if (owner !== 0 && owner === o.target) return { kind: "none" };
  if (owner !== 0 && !o.overwrite) return { kind: "refused", owner };
  const stamp = floodStamp(o.labels, o.width, o.height, o.x, o.y, o.color);
  if (!stamp) return { kind: "none" };
  let area = 0;
  for (let i = 0; i < stamp.data.length; i++) area += stamp.data[i];
  return { kind: "fill", stamp, area };
}

/** RGBA pixels of `image` at width x height, or null when the browser will not give them. */
export function readImagePixels(image: CanvasImageSource, width: number, height: number): Uint8ClampedArray | null {
  try {
    const c = document.createElement("canvas");
    c.width = width;
    c.height = height;
    const ctx = c.getContext("2d", { willReadFrequently: true })!;
    ctx.drawImage(image, 0, 0, width, height);
    return ctx.getImageData(0, 0, width, height).data;
  } catch {
    return null;
  }
}
