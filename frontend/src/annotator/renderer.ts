/**
 * Draws a MaskDocument into an image-resolution canvas, one dirty rectangle at a time.
 *
 * The overlay is a grid of canvas tiles in the same CSS-transformed stage as the image, so zoom
 * and pan cost nothing here, and a brush move repaints only the pixels it touched (putImageData
 * of the dirty rectangle into the one or few tiles under it): the browser then re-uploads those
 * tiles, not a 12-megapixel layer.
 */
import type { Box, BoxBitmap } from "../lib/rle";
import type { MaskDocument, MaskObject } from "./maskDocument";
import { intersectBox } from "./stamps";

/** "#rrggbb" -> RGBA packed for a little-endian Uint32Array view of ImageData (alpha 255). */
export function packColor(hex: string, alpha = 255): number {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex.trim());
  const v = m ? parseInt(m[1], 16) : 0xff00ff;
  const r = (v >> 16) & 255;
  const g = (v >> 8) & 255;
  const b = v & 255;
  return ((alpha << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

export interface RenderStyle {
  /** Packed colour of a class id (see packColor); classes missing here use magenta. */
  colorOf: (classId: number) => number;
  /** Whether an object is drawn (class shown and object shown). */
  isVisible: (o: MaskObject) => boolean;
}

/** Side of the square canvas tiles the overlay is split into. */
export const TILE = 512;

export class MaskRenderer {
  private tiles: { canvas: HTMLCanvasElement; ctx: CanvasRenderingContext2D; box: Box }[] = [];
  private cols: number;
  private pending: Box | null = null;
  private pendingAll = false;
  private frame = 0;
  /** Milliseconds spent in the last few flushes (for the paint benchmark). */
  readonly flushTimes: number[] = [];

  /**
   * @param container element sized to the image (in the transformed stage); the renderer fills
   *   it with TILE x TILE canvases so an update re-uploads only the tiles it touches.
   */
  constructor(
    readonly container: HTMLElement,
    private doc: MaskDocument,
    private style: RenderStyle,
  ) {
    container.replaceChildren();
    this.cols = Math.ceil(doc.width / TILE);
    const rows = Math.ceil(doc.height / TILE);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < this.cols; c++) {
        const box = {
          x0: c * TILE,
          y0: r * TILE,
          x1: Math.min(doc.width, (c + 1) * TILE),
          y1: Math.min(doc.height, (r + 1) * TILE),
        };
        const canvas = document.createElement("canvas");
        canvas.width = box.x1 - box.x0;
        canvas.height = box.y1 - box.y0;
        canvas.style.left = `${box.x0}px`;
        canvas.style.top = `${box.y0}px`;
        const ctx = canvas.getContext("2d");
        if (!ctx) throw new Error("2D canvas is not available");
        container.appendChild(canvas);
        this.tiles.push({ canvas, ctx, box });
      }
    }
  }

  setStyle(style: RenderStyle): void {
    this.style = style;
    this.invalidate(null);
  }

  /** Queue a region (null = everything) for the next animation frame. */
  invalidate(rect: Box | null): void {
    if (rect === null) this.pendingAll = true;
    else if (!this.pendingAll) {
      this.pending = this.pending
        ? {
            x0: Math.min(this.pending.x0, rect.x0),
            y0: Math.min(this.pending.y0, rect.y0),
            x1: Math.max(this.pending.x1, rect.x1),
            y1: Math.max(this.pending.y1, rect.y1),
          }
        : { ...rect };
    }
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  /** Draw everything queued now. */
  flush(): void {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    const t0 = performance.now();
    const full = { x0: 0, y0: 0, x1: this.doc.width, y1: this.doc.height };
    const rect = this.pendingAll ? full : this.pending && intersectBox(this.pending, full);
    this.pending = null;
    this.pendingAll = false;
    if (!rect) return;
    const c0 = Math.floor(rect.x0 / TILE);
    const c1 = Math.ceil(rect.x1 / TILE);
    const r0 = Math.floor(rect.y0 / TILE);
    const r1 = Math.ceil(rect.y1 / TILE);
    const visible = this.doc.objects.filter((o) => !o.isEmptyBox && this.style.isVisible(o));
    for (let r = r0; r < r1; r++) {
      for (let c = c0; c < c1; c++) {
        const tile = this.tiles[r * this.cols + c];
        const part = intersectBox(tile.box, rect);
        if (part) this.drawRect(tile, part, visible);
      }
    }
    this.flushTimes.push(performance.now() - t0);
    if (this.flushTimes.length > 2000) this.flushTimes.splice(0, this.flushTimes.length - 2000);
  }

  private drawRect(
    tile: { ctx: CanvasRenderingContext2D; box: Box },
    r: Box,
    objects: readonly MaskObject[],
  ): void {
    const w = r.x1 - r.x0;
    const h = r.y1 - r.y0;
    const img = tile.ctx.createImageData(w, h);
    const px = new Uint32Array(img.data.buffer);
    for (const o of objects) {
      const c = intersectBox(o.box, r);
      if (!c) continue;
      const color = this.style.colorOf(o.classId);
      const ow = o.boxWidth;
      for (let y = c.y0; y < c.y1; y++) {
        const src = (y - o.box.y0) * ow - o.box.x0;
        const dst = (y - r.y0) * w - r.x0;
        for (let x = c.x0; x < c.x1; x++) if (o.data[src + x]) px[dst + x] = color;
      }
    }
    tile.ctx.putImageData(img, r.x0 - tile.box.x0, r.y0 - tile.box.y0);
  }

  dispose(): void {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
  }
}

/** Draw a box bitmap (e.g. an IntelliBrush proposal) into a canvas sized and placed at its box. */
export function drawBitmapCanvas(canvas: HTMLCanvasElement, bm: BoxBitmap, color: number): void {
  const w = bm.box.x1 - bm.box.x0;
  const h = bm.box.y1 - bm.box.y0;
  canvas.width = w;
  canvas.height = h;
  canvas.style.left = `${bm.box.x0}px`;
  canvas.style.top = `${bm.box.y0}px`;
  const ctx = canvas.getContext("2d")!;
  const img = ctx.createImageData(w, h);
  const px = new Uint32Array(img.data.buffer);
  for (let i = 0; i < bm.data.length; i++) if (bm.data[i]) px[i] = color;
  ctx.putImageData(img, 0, 0);
}
