/**
 * Zoom and pan of one image in the annotator's viewport: the stage (image, masks, proposal) is
 * CSS-transformed, so a view change costs one style write. The view starts fitted, the wheel
 * zooms at the cursor, and `toImage` maps pointer positions to image pixels.
 */
import { useLayoutEffect, useRef, useState } from "react";
import { fitView, screenToImage, wheelFactor, zoomAt, type View } from "../lib/viewport";

export function useViewport(width: number, height: number, redraw: () => void) {
  const viewportRef = useRef<HTMLDivElement>(null);
  const stageRef = useRef<HTMLDivElement>(null);
  const viewRef = useRef<View>({ scale: 1, tx: 0, ty: 0 });
  const [zoomPct, setZoomPct] = useState(100);
  const redrawRef = useRef(redraw);
  redrawRef.current = redraw;

  const applyView = (v: View) => {
    viewRef.current = v;
    const s = stageRef.current;
    if (s) {
      s.style.transform = `translate(${v.tx}px, ${v.ty}px) scale(${v.scale})`;
      s.classList.toggle("pixelated", v.scale >= 2);
    }
    setZoomPct(Math.round(v.scale * 100));
    redrawRef.current();
  };

  const fit = () => {
    const vp = viewportRef.current;
    if (vp) applyView(fitView(width, height, vp.clientWidth, vp.clientHeight));
  };

  /** Image coordinates and viewport (screen) coordinates of a pointer position. */
  const toImage = (e: { clientX: number; clientY: number }): [number, number, number, number] => {
    const r = viewportRef.current!.getBoundingClientRect();
    const sx = e.clientX - r.left;
    const sy = e.clientY - r.top;
    const [ix, iy] = screenToImage(viewRef.current, sx, sy);
    return [ix, iy, sx, sy];
  };

  useLayoutEffect(() => {
    fit();
    const vp = viewportRef.current!;
    const ro = new ResizeObserver(() => redrawRef.current());
    ro.observe(vp);
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      const r = vp.getBoundingClientRect();
      applyView(zoomAt(viewRef.current, e.clientX - r.left, e.clientY - r.top, wheelFactor(e.deltaY)));
    };
    vp.addEventListener("wheel", onWheel, { passive: false });
    vp.focus();
    return () => {
      ro.disconnect();
      vp.removeEventListener("wheel", onWheel);
    };
  }, []); // eslint-disable-line react-hooks/exhaustive-deps -- one viewport per asset (the component is keyed by it)

  return { viewportRef, stageRef, viewRef, zoomPct, applyView, fit, toImage };
}
