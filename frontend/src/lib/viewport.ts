/**
 * Screen <-> image coordinate transforms for a zoomable, pannable image view.
 *
 * A view maps image pixel coordinates (ix, iy), origin top-left, to screen coordinates relative to
 * the viewport element: sx = ix * scale + tx, sy = iy * scale + ty. The annotator applies the same
 * mapping as the CSS transform `translate(tx px, ty px) scale(scale)` with `transform-origin: 0 0`.
 */
export interface View {
  scale: number;
  tx: number;
  ty: number;
}

export const MIN_SCALE = 0.02;
export const MAX_SCALE = 64;

/** Screen point -> continuous image point. */
export function screenToImage(v: View, sx: number, sy: number): [number, number] {
  return [(sx - v.tx) / v.scale, (sy - v.ty) / v.scale];
}

/** Continuous image point -> screen point. */
export function imageToScreen(v: View, ix: number, iy: number): [number, number] {
  return [ix * v.scale + v.tx, iy * v.scale + v.ty];
}

/** Integer pixel under a screen point (may lie outside the image). */
export function pixelAt(v: View, sx: number, sy: number): [number, number] {
  const [ix, iy] = screenToImage(v, sx, sy);
  return [Math.floor(ix), Math.floor(iy)];
}

/** Zoom by `factor` keeping the image point under the screen point (sx, sy) fixed. */
export function zoomAt(v: View, sx: number, sy: number, factor: number): View {
  const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, v.scale * factor));
  const [ix, iy] = screenToImage(v, sx, sy);
  return { scale, tx: sx - ix * scale, ty: sy - iy * scale };
}

/** Pan by a screen-space delta. */
export function panBy(v: View, dx: number, dy: number): View {
  return { scale: v.scale, tx: v.tx + dx, ty: v.ty + dy };
}

/** View that fits an image of imgW x imgH centred in a viewport of viewW x viewH, with a margin. */
export function fitView(imgW: number, imgH: number, viewW: number, viewH: number, margin = 16): View {
  const availW = Math.max(1, viewW - 2 * margin);
  const availH = Math.max(1, viewH - 2 * margin);
  const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, Math.min(availW / imgW, availH / imgH)));
  return { scale, tx: (viewW - imgW * scale) / 2, ty: (viewH - imgH * scale) / 2 };
}

/** Wheel delta (pixels) -> zoom factor; one notch (~100px) zooms by ~1.2x. */
export function wheelFactor(deltaY: number): number {
  return Math.pow(1.2, -deltaY / 100);
}
