/**
 * The annotator's UI layer: a screen-sized canvas over the stage for what follows the pointer
 * (brush outline, polygon in progress, IntelliBrush points and box, the selection's box).
 * Redrawn whole, at most once per frame.
 */
import type { Box } from "../lib/rle";
import { imageToScreen, type View } from "../lib/viewport";

export interface UiState {
  view: View;
  selectedBox: Box | null;
  polygon: [number, number][];
  /** Pointer position in viewport pixels, or null when outside. */
  cursor: [number, number] | null;
  ibPoints: [number, number, number][];
  ibBox: [number, number, number, number] | null;
  /** An IntelliBrush box being dragged (start in viewport pixels). */
  dragBox: { moved: boolean; sx: number; sy: number } | null;
  /** Brush or eraser outline, when one of them is the tool. */
  brush: { size: number; eraser: boolean } | null;
  /** The current class's colour. */
  color: string;
}

export function drawUiLayer(c: HTMLCanvasElement, w: number, h: number, u: UiState): void {
  const dpr = window.devicePixelRatio || 1;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  const ctx = c.getContext("2d")!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const v = u.view;
  const sel = u.selectedBox;
  if (sel) {
    const [x0, y0] = imageToScreen(v, sel.x0, sel.y0);
    const [x1, y1] = imageToScreen(v, sel.x1, sel.y1);
    ctx.setLineDash([4, 4]);
    ctx.strokeStyle = "#ffffff";
    ctx.strokeRect(x0 - 0.5, y0 - 0.5, x1 - x0 + 1, y1 - y0 + 1);
    ctx.setLineDash([]);
  }
  if (u.polygon.length > 0) {
    ctx.strokeStyle = u.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    u.polygon.forEach(([x, y], i) => {
      const [sx, sy] = imageToScreen(v, x, y);
      if (i === 0) ctx.moveTo(sx, sy);
      else ctx.lineTo(sx, sy);
    });
    if (u.cursor) ctx.lineTo(...u.cursor);
    ctx.stroke();
    ctx.fillStyle = "#ffffff";
    for (const [x, y] of u.polygon) {
      const [sx, sy] = imageToScreen(v, x, y);
      ctx.fillRect(sx - 3, sy - 3, 6, 6);
    }
    ctx.lineWidth = 1;
  }
  for (const [x, y, label] of u.ibPoints) {
    const [sx, sy] = imageToScreen(v, x + 0.5, y + 0.5);
    ctx.beginPath();
    ctx.arc(sx, sy, 6, 0, Math.PI * 2);
    ctx.fillStyle = label ? "#22c55e" : "#ef4444";
    ctx.fill();
    ctx.strokeStyle = "#ffffff";
    ctx.stroke();
  }
  const box = u.dragBox && u.cursor ? null : u.ibBox;
  const st = u.dragBox;
  if (st && st.moved && u.cursor) {
    ctx.strokeStyle = "#22c55e";
    ctx.strokeRect(st.sx, st.sy, u.cursor[0] - st.sx, u.cursor[1] - st.sy);
  } else if (box) {
    const [x0, y0] = imageToScreen(v, box[0], box[1]);
    const [x1, y1] = imageToScreen(v, box[2], box[3]);
    ctx.strokeStyle = "#22c55e";
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  }
  const cur = u.cursor;
  if (cur && u.brush) {
    ctx.beginPath();
    ctx.arc(cur[0], cur[1], Math.max(1, (u.brush.size / 2) * v.scale), 0, Math.PI * 2);
    ctx.strokeStyle = "#000000";
    ctx.lineWidth = 3;
    ctx.stroke();
    ctx.strokeStyle = u.brush.eraser ? "#ffffff" : u.color;
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.lineWidth = 1;
  }
}
