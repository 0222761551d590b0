/**
 * Draws a MaskDocument into an image-resolution canvas, one dirty rectangle at a time.
 *
 * The canvas sits in the same CSS-transformed stage as the image, so zoom and pan cost nothing
 * here: a brush move repaints only the few hundred pixels it touched (putImageData of the dirty
 * rectangle), whatever the image size.
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

export class MaskRenderer {
  private ctx: CanvasRenderingContext2D;
  private pending: Box | null = null;
  private pendingAll = false;
  private frame = 0;
  /** Milliseconds spent in the last few flushes (for the paint benchmark). */
  readonly flushTimes: number[] = [];

  constructor(
    readonly canvas: HTMLCanvasElement,
    private doc: MaskDocument,
    private style: RenderStyle,
  ) {
    canvas.width = doc.width;
    canvas.height = doc.height;
    const ctx = canvas.getContext("2d", { willReadFrequently: false });
    if (!ctx) throw new Error("2D canvas is not available");
    this.ctx = ctx;
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
    if (rect === full) {
      // Full redraw: clear, then paint each visible object's box (cheaper than a full-frame loop).
      this.ctx.clearRect(0, 0, full.x1, full.y1);
      for (const o of this.doc.objects) {
        if (o.isEmptyBox || !this.style.isVisible(o)) continue;
        this.drawRect(o.box);
      }
    } else {
      this.drawRect(rect);
    }
    this.flushTimes.push(performance.now() - t0);
    if (this.flushTimes.length > 240) this.flushTimes.splice(0, this.flushTimes.length - 240);
  }

  private drawRect(r: Box): void {
    const w = r.x1 - r.x0;
    const h = r.y1 - r.y0;
    const img = this.ctx.createImageData(w, h);
    const px = new Uint32Array(img.data.buffer);
    for (const o of this.doc.objects) {
      if (o.isEmptyBox || !this.style.isVisible(o)) continue;
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
    this.ctx.putImageData(img, r.x0, r.y0);
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
