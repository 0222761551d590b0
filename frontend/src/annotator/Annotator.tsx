import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type PointerEvent as ReactPointerEvent } from "react";
import { api } from "../api/client";
import type { Asset, AssetStatus, LabelClass, MaskEntry } from "../api/types";
import { rleToBoxBitmap, type BoxBitmap } from "../lib/rle";
import { panBy, imageToScreen, type View } from "../lib/viewport";
import type { SaveState } from "./autosave";
import type { IbMode, IbStats, Proposal } from "./intellibrush";
import { KeyboardHelp } from "./KeyboardHelp";
import { actionFor, type Tool } from "./keymap";
import type { MaskDocument, MaskObject } from "./maskDocument";
import { drawBitmapCanvas, MaskRenderer, packColor } from "./renderer";
import { AnnotatorHeader, ClassesPanel, ObjectsPanel, Toolbox } from "./panels";
import { usePresence } from "./presence";
import { ReviewPanel } from "./ReviewPanel";
import { RevisionPanel, type Revision } from "./RevisionPanel";
import { useAssetNavigation } from "./useAssetNavigation";
import { useIntelliBrush } from "./useIntelliBrush";
import { useAssetSession } from "./useAssetSession";
import { useViewport } from "./useViewport";
import { planFill, readImagePixels } from "./fill";
import { capsuleStamp, polygonStamp } from "./stamps";
import { drawUiLayer } from "./uiLayer";

interface Props {
  projectId: number;
  asset: Asset;
  image: HTMLImageElement;
  classes: LabelClass[];
  initialDoc: () => MaskDocument;
  /** Revision number of the loaded masks (null: none saved yet); sent back to detect conflicts. */
  initialRevision: number | null;
  /** The document was restored from the local journal (not saved yet). */
  restored?: boolean;
  /** Unsaved edits of this asset found in the journal, offered back. */
  recovered?: { savedAt: number; restore: () => void; discard: () => void } | null;
}

interface Stroke {
  kind: "paint" | "erase" | "pan" | "box";
  lastX: number;
  lastY: number;
  startSX: number;
  startSY: number;
  target: number;
  moved: boolean;
  button: number;
}

/** Debug and test hook: lets browser tests map image coordinates to the page and read state. */
declare global {
  interface Window {
    __tessera?: {
      imageToPage: (x: number, y: number) => [number, number];
      masks: () => unknown;
      saveState: () => SaveState;
      view: () => View;
      benchmarkFlushMs: () => number[];
      /** Main-thread time spent in pointermove handlers: [total ms, events]. */
      pointerMoveMs: () => [number, number];
      proposal: () => Proposal | null;
      /** IntelliBrush method and timings; clickToDrawMs: pointer up to proposal drawn (next frame). */
      intellibrush: () => IbStats & { mode: IbMode; clickToDrawMs: number[] };
      /** Make the annotator throw while rendering (tests the error boundary and the journal). */
      crash: (message?: string) => void;
      /** [width, height] of the open asset's document. */
      size: () => [number, number];
      assetId: () => number;
    };
  }
}

export function Annotator({ projectId, asset, image, classes, initialDoc, initialRevision, restored, recovered }: Props) {
  const qc = useQueryClient();
  const [tool, setTool] = useState<Tool>("brush");
  const [brushSize, setBrushSize] = useState(24);
  const [fillTolerance, setFillTolerance] = useState(32);
  const [fillOverwrite, setFillOverwrite] = useState(false);
  const [opacity, setOpacity] = useState(0.6);
  const [classIdx, setClassIdx] = useState(0);
  const [selected, setSelected] = useState<number | null>(null);
  const [newObjectNext, setNewObjectNext] = useState(false);
  const [hiddenClasses, setHiddenClasses] = useState<Set<number>>(() => new Set());
  const [hiddenObjects, setHiddenObjects] = useState<Set<number>>(() => new Set());
  const [masksHidden, setMasksHidden] = useState(false);
  const [, setTick] = useState(0);
  const [help, setHelp] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [polygon, setPolygon] = useState<[number, number][]>([]);
  const {
    session: ib,
    mode: ibMode,
    points: ibPoints,
    box: ibBox,
    proposal,
    busy: ibBusy,
    request: fetchProposal,
    discard: discardIntelliBrush,
    clickAt,
    clickToDraw,
  } = useIntelliBrush(asset.id, setNotice);

  const overlayRef = useRef<HTMLDivElement>(null);
  const proposalRef = useRef<HTMLCanvasElement>(null);
  const uiRef = useRef<HTMLCanvasElement>(null);
  const rendererRef = useRef<MaskRenderer | null>(null);
  const cursorRef = useRef<[number, number] | null>(null);
  const strokeRef = useRef<Stroke | null>(null);
  const spaceRef = useRef(false);
  const moveStats = useRef({ ms: 0, n: 0 });
  const [crash, setCrash] = useState<string | null>(null);
  const [previewMasks, setPreviewMasks] = useState<MaskEntry[] | null>(null);
  const previewRef = useRef<HTMLCanvasElement>(null);
  const others = usePresence(asset.id);
  if (crash !== null) throw new Error(crash);

  const currentClass: LabelClass | undefined = classes[classIdx];
  // Opacity is baked into the colours (no CSS opacity on the tile layer: that would make the
  // compositor blend all tiles through an extra surface every frame).
  const colors = useMemo(
    () => new Map(classes.map((c) => [c.id, packColor(c.color, Math.round(opacity * 255))])),
    [classes, opacity],
  );

  const isVisible = useCallback(
    (o: MaskObject) => !masksHidden && !hiddenClasses.has(o.classId) && !hiddenObjects.has(o.id),
    [masksHidden, hiddenClasses, hiddenObjects],
  );

  // ---- per-asset session: document, autosave, journal -----------------------------------------
  const { session, saveState, saveError, conflict, savedTick, status, setStatus } = useAssetSession({
    projectId,
    assetId: asset.id,
    assetStatus: asset.status,
    initialDoc,
    initialRevision,
    restored,
  });
  const doc = session.doc;
  const saver = session.saver;
  const drawUiRef = useRef<() => void>(() => {});
  const { viewportRef, stageRef, viewRef, zoomPct, applyView, fit, toImage } = useViewport(doc.width, doc.height, () =>
    drawUiRef.current(),
  );

  // ---- rendering -----------------------------------------------------------------------------
  useLayoutEffect(() => {
    const r = new MaskRenderer(overlayRef.current!, doc, {
      colorOf: (id) => colors.get(id) ?? 0xffff00ff,
      isVisible: () => true,
    });
    rendererRef.current = r;
    return () => r.dispose();
    // The renderer lives as long as the document; style updates below.
  }, [doc]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    rendererRef.current?.setStyle({ colorOf: (id) => colors.get(id) ?? 0xffff00ff, isVisible });
  }, [colors, isVisible]);

  useEffect(() => {
    const offDoc = doc.subscribe((c) => {
      rendererRef.current?.invalidate(c.dirty);
      if (c.structural) setTick((t) => t + 1);
      requestUi();
    });
    const offHist = doc.history.subscribe(() => setTick((t) => t + 1));
    return () => {
      offDoc();
      offHist();
    };
  }); // re-subscribe each render so drawUi sees current state

  // The UI layer (cursor, polygon, prompts) redraws at most once per frame.
  const uiFrame = useRef(0);
  const requestUi = () => {
    if (!uiFrame.current)
      uiFrame.current = requestAnimationFrame(() => {
        uiFrame.current = 0;
        drawUiRef.current();
      });
  };

  const drawUi = () => {
    const c = uiRef.current;
    const vp = viewportRef.current;
    if (!c || !vp) return;
    const sel = selected !== null ? doc.get(selected) : undefined;
    const st = strokeRef.current;
    drawUiLayer(c, vp.clientWidth, vp.clientHeight, {
      view: viewRef.current,
      selectedBox: sel && !sel.isEmptyBox ? sel.box : null,
      polygon,
      cursor: cursorRef.current,
      ibPoints,
      ibBox,
      dragBox: st?.kind === "box" ? { moved: st.moved, sx: st.startSX, sy: st.startSY } : null,
      brush: tool === "brush" || tool === "eraser" ? { size: brushSize, eraser: tool === "eraser" } : null,
      color: currentClass?.color ?? "#ffffff",
    });
  };

  drawUiRef.current = drawUi;




  useEffect(() => drawUi());

  // Revision preview layer: a saved revision's masks, drawn instead of the document's.
  useEffect(() => {
    const c = previewRef.current;
    if (!c) return;
    c.hidden = !previewMasks;
    if (!previewMasks) return;
    c.width = doc.width;
    c.height = doc.height;
    const ctx = c.getContext("2d")!;
    const img = ctx.createImageData(doc.width, doc.height);
    const px = new Uint32Array(img.data.buffer);
    for (const m of previewMasks) {
      const bm = rleToBoxBitmap(m.rle);
      if (!bm) continue;
      const color = colors.get(m.class_id) ?? 0xffff00ff;
      const bw = bm.box.x1 - bm.box.x0;
      for (let y = bm.box.y0; y < bm.box.y1; y++)
        for (let x = bm.box.x0; x < bm.box.x1; x++)
          if (bm.data[(y - bm.box.y0) * bw + (x - bm.box.x0)]) px[y * doc.width + x] = color;
    }
    ctx.putImageData(img, 0, 0);
  }, [previewMasks, colors, doc]);

  const restoreRevision = async (r: Revision) => {
    if (!(await session.leave())) throw new Error("The current edits could not be saved; retry the save first.");
    await api(`/assets/${asset.id}/masks/revisions/${r.id}/restore/`, { method: "POST" });
    // The page reloads the asset (a new revision) and opens a fresh session on it.
    await qc.invalidateQueries({ queryKey: ["annotate", asset.id] });
  };

  // Proposal layer.
  useEffect(() => {
    const c = proposalRef.current;
    if (!c) return;
    if (!proposal?.bitmap) {
      c.width = 0;
      c.height = 0;
      c.hidden = true;
      return;
    }
    c.hidden = false;
    drawBitmapCanvas(c, proposal.bitmap, packColor(currentClass?.color ?? "#ffffff", 170));
    const t0 = clickAt.current;
    if (t0 !== null) {
      clickAt.current = null;
      requestAnimationFrame(() => clickToDraw.current.push(performance.now() - t0));
    }
  }, [proposal, currentClass]);

  // IntelliBrush: fetch the embedding and the decoder as soon as the tool is picked.
  useEffect(() => {
    if (tool === "intellibrush") void ib.prepare();
  }, [tool, ib]);

  // Test/debug hook.
  useEffect(() => {
    window.__tessera = {
      imageToPage: (x, y) => {
        const r = viewportRef.current!.getBoundingClientRect();
        const [sx, sy] = imageToScreen(viewRef.current, x, y);
        return [r.left + sx, r.top + sy];
      },
      masks: () => doc.toApi(),
      saveState: () => saver.state,
      view: () => viewRef.current,
      benchmarkFlushMs: () => rendererRef.current?.flushTimes.slice() ?? [],
      pointerMoveMs: () => [moveStats.current.ms, moveStats.current.n],
      proposal: () => proposal,
      intellibrush: () => ({ ...ib.stats, mode: ib.mode, clickToDrawMs: clickToDraw.current.slice() }),
      crash: (message = "Injected annotator failure") => setCrash(message),
      size: () => [doc.width, doc.height],
      assetId: () => asset.id,
    };
    return () => {
      delete window.__tessera;
    };
  });

  // ---- editing helpers -----------------------------------------------------------------------
  /** Make class `i` current; a selected object of another class is deselected. */
  const pickClass = (i: number) => {
    setClassIdx(i);
    const sel = selected !== null ? doc.get(selected) : undefined;
    if (sel && sel.classId !== classes[i].id) setSelected(null);
  };

  const requireClass = (): LabelClass | null => {
    if (!currentClass) {
      setNotice("Add a class on the project's Classes page first.");
      return null;
    }
    return currentClass;
  };

  /** Inside an edit: the object the next pixels go to (the selected one, or a new one). */
  const targetObject = (cls: LabelClass): number => {
    const sel = selected !== null ? doc.get(selected) : undefined;
    if (sel && sel.classId === cls.id && !newObjectNext) return sel.id;
    const id = doc.createObject(cls.id);
    setSelected(id);
    setNewObjectNext(false);
    return id;
  };


  const clampPixel = (ix: number, iy: number): [number, number] => [
    Math.min(doc.width - 1, Math.max(0, Math.floor(ix))),
    Math.min(doc.height - 1, Math.max(0, Math.floor(iy))),
  ];

  const inImage = (ix: number, iy: number) => ix >= 0 && iy >= 0 && ix < doc.width && iy < doc.height;

  const acceptProposal = () => {
    const cls = requireClass();
    if (!cls || !proposal?.bitmap) return;
    doc.begin("IntelliBrush");
    const id = doc.createObject(cls.id);
    doc.paint(id, proposal.bitmap as BoxBitmap);
    doc.commit();
    setSelected(doc.get(id) ? id : null);
    discardIntelliBrush();
  };

  const closePolygon = () => {
    const cls = requireClass();
    if (!cls) return;
    const stamp = polygonStamp(polygon, doc.width, doc.height);
    setPolygon([]);
    if (!stamp) return;
    doc.begin("Polygon");
    const id = targetObject(cls);
    doc.paint(id, stamp);
    doc.commit();
    if (!doc.get(id)) setSelected(null);
  };

  /** Fill: the connected region under the click, bounded by mask outlines and (magic wand) by
   * image colour within the tolerance. Another object's pixels are only taken over when the
   * user ticked "Fill over other objects". */
  const fillAt = (ix: number, iy: number) => {
    const cls = requireClass();
    if (!cls || !inImage(ix, iy)) return;
    const [x, y] = clampPixel(ix, iy);
    const sel = selected !== null ? doc.get(selected) : undefined;
    const rgba = imagePixels();
    const plan = planFill({
      labels: doc.ownerMap(),
      width: doc.width,
      height: doc.height,
      x,
      y,
      target: sel && sel.classId === cls.id && !newObjectNext ? sel.id : null,
      overwrite: fillOverwrite,
      color: rgba ? { rgba, tolerance: fillTolerance } : undefined,
    });
    if (plan.kind === "refused")
      setNotice(`That pixel belongs to object #${plan.owner}. Tick "Fill over other objects" to recolour it.`);
    if (plan.kind !== "fill") return;
    doc.begin("Fill");
    const id = targetObject(cls);
    doc.paint(id, plan.stamp);
    doc.commit();
    if (!doc.get(id)) setSelected(null);
    const pct = Math.round((100 * plan.area) / (doc.width * doc.height));
    if (pct >= 50) setNotice(`Fill covered ${pct}% of the image. Undo (Ctrl+Z) and lower the tolerance if that is too much.`);
  };

  /** The image's RGBA pixels (read once per asset, on the first fill); null when unreadable. */
  const pixelsRef = useRef<Uint8ClampedArray | null | undefined>(undefined);
  const imagePixels = (): Uint8ClampedArray | null => {
    if (pixelsRef.current === undefined) {
      pixelsRef.current = readImagePixels(image, doc.width, doc.height);
      if (!pixelsRef.current) setNotice("The image's colours cannot be read here; Fill is bounded by mask outlines only.");
    }
    return pixelsRef.current;
  };

  const undo = () => {
    if (strokeRef.current) return;
    doc.undo();
    if (selected !== null && !doc.get(selected)) setSelected(null);
  };
  const redo = () => {
    if (strokeRef.current) return;
    doc.redo();
  };

  // ---- pointer -------------------------------------------------------------------------------
  const onPointerDown = (e: ReactPointerEvent<HTMLDivElement>) => {
    const vp = viewportRef.current!;
    vp.focus({ preventScroll: true });
    const [ix, iy, sx, sy] = toImage(e);
    const base = { lastX: ix, lastY: iy, startSX: sx, startSY: sy, target: 0, moved: false, button: e.button };
    if (e.button === 1 || spaceRef.current) {
      e.preventDefault();
      vp.setPointerCapture(e.pointerId);
      strokeRef.current = { ...base, kind: "pan", lastX: sx, lastY: sy };
      return;
    }
    if (tool === "intellibrush") {
      if (e.button !== 0 && e.button !== 2) return;
      vp.setPointerCapture(e.pointerId);
      strokeRef.current = { ...base, kind: "box" };
      return;
    }
    if (e.button !== 0) return;
    if (tool === "polygon") {
      if (polygon.length >= 3) {
        const [fx, fy] = imageToScreen(viewRef.current, polygon[0][0], polygon[0][1]);
        if (Math.hypot(fx - sx, fy - sy) <= 8) {
          closePolygon();
          return;
        }
      }
      setPolygon((p) => [...p, [Math.min(doc.width, Math.max(0, ix)), Math.min(doc.height, Math.max(0, iy))]]);
      return;
    }
    if (tool === "fill") {
      fillAt(ix, iy);
      return;
    }
    // Brush or eraser.
    let target = 0;
    if (tool === "brush") {
      const cls = requireClass();
      if (!cls) return;
      doc.begin("Brush");
      target = targetObject(cls);
    } else {
      doc.begin("Eraser");
    }
    vp.setPointerCapture(e.pointerId);
    strokeRef.current = { ...base, kind: tool === "brush" ? "paint" : "erase", target };
    dab(ix, iy, ix, iy);
  };

  const dab = (ax: number, ay: number, bx: number, by: number) => {
    const st = strokeRef.current;
    if (!st) return;
    const stamp = capsuleStamp(ax, ay, bx, by, brushSize / 2, doc.width, doc.height);
    if (!stamp) return;
    if (st.kind === "paint") doc.paint(st.target, stamp);
    else doc.erase(stamp, isVisible);
  };

  const onPointerMove = (e: ReactPointerEvent<HTMLDivElement>) => {
    const t0 = performance.now();
    handlePointerMove(e);
    moveStats.current.ms += performance.now() - t0;
    moveStats.current.n++;
  };

  const handlePointerMove = (e: ReactPointerEvent<HTMLDivElement>) => {
    const [ix, iy, sx, sy] = toImage(e);
    cursorRef.current = [sx, sy];
    const st = strokeRef.current;
    if (st) {
      if (Math.hypot(sx - st.startSX, sy - st.startSY) > 4) st.moved = true;
      if (st.kind === "pan") {
        applyView(panBy(viewRef.current, sx - st.lastX, sy - st.lastY));
        st.lastX = sx;
        st.lastY = sy;
        return;
      }
      if (st.kind === "paint" || st.kind === "erase") {
        // Coalesced events give every intermediate position the browser saw this frame.
        const events = e.nativeEvent.getCoalescedEvents?.() ?? [];
        const pts = events.length ? events.map((ev) => toImage(ev)) : [[ix, iy]];
        for (const [px, py] of pts) {
          dab(st.lastX, st.lastY, px, py);
          st.lastX = px;
          st.lastY = py;
        }
      }
    }
    requestUi();
  };

  const onPointerUp = (e: ReactPointerEvent<HTMLDivElement>) => {
    const st = strokeRef.current;
    strokeRef.current = null;
    const vp = viewportRef.current!;
    if (vp.hasPointerCapture(e.pointerId)) vp.releasePointerCapture(e.pointerId);
    if (!st) return;
    if (st.kind === "paint" || st.kind === "erase") {
      doc.commit();
      if (selected !== null && !doc.get(selected)) setSelected(null);
    } else if (st.kind === "box") {
      const [ix, iy] = toImage(e);
      if (st.moved) {
        const [x0, y0] = clampPixel(Math.min(st.lastX, ix), Math.min(st.lastY, iy));
        const [x1, y1] = clampPixel(Math.max(st.lastX, ix), Math.max(st.lastY, iy));
        const box: [number, number, number, number] = [x0, y0, x1, y1];
        void fetchProposal(ibPoints, box);
      } else if (inImage(ix, iy)) {
        const exclude = st.button === 2 || e.altKey;
        const [px, py] = clampPixel(ix, iy);
        const pts: [number, number, number][] = [...ibPoints, [px, py, exclude ? 0 : 1]];
        void fetchProposal(pts, ibBox);
      }
    }
    requestUi();
  };

  const onPointerLeave = () => {
    cursorRef.current = null;
    requestUi();
  };

  // ---- asset navigation ----------------------------------------------------------------------
  const { goto, leaveTo, projectUrl } = useAssetNavigation(projectId, session, setNotice);

  const changeStatus = async (s: AssetStatus) => {
    setStatus(s);
    try {
      await api(`/assets/${asset.id}/`, { method: "PATCH", body: { status: s } });
      qc.invalidateQueries({ queryKey: ["assets", projectId] });
    } catch (e) {
      setNotice((e as Error).message);
      setStatus(asset.status);
    }
  };

  // ---- keyboard ------------------------------------------------------------------------------
  const keyHandler = useRef<(e: KeyboardEvent) => void>(() => {});
  keyHandler.current = (e: KeyboardEvent) => {
    const t = e.target as HTMLElement | null;
    // Shortcuts stay live on sliders, checkboxes and buttons, not where text is typed.
    const typing =
      !!t &&
      (t.tagName === "SELECT" ||
        t.tagName === "TEXTAREA" ||
        t.isContentEditable ||
        (t.tagName === "INPUT" && !["range", "checkbox", "radio", "button", "color"].includes((t as HTMLInputElement).type)));
    const onControl = !!t && (t.tagName === "INPUT" || t.tagName === "SELECT");
    if (help) {
      if (e.key === "Escape" || e.key === "?") {
        e.preventDefault();
        setHelp(false);
      }
      return;
    }
    if (typing && e.key !== "Escape") return;
    const hit = actionFor(e);
    if (!hit) return;
    // Arrow keys move sliders and selects; the other shortcuts stay live on them.
    if (onControl && (e.key === "ArrowLeft" || e.key === "ArrowRight")) return;
    const act = hit.action;
    if (act.startsWith("tool.")) {
      setTool(act.slice(5) as Tool);
      return;
    }
    switch (act) {
      case "undo":
        e.preventDefault();
        undo();
        break;
      case "redo":
        e.preventDefault();
        redo();
        break;
      case "save":
        e.preventDefault();
        void saver.flush();
        break;
      case "pan.hold":
        if (t === viewportRef.current || t === document.body) e.preventDefault();
        spaceRef.current = true;
        break;
      case "class":
        if (hit.index < classes.length) pickClass(hit.index);
        break;
      case "help":
        setHelp(true);
        break;
      case "object.new":
        setNewObjectNext(true);
        setSelected(null);
        break;
      case "masks.toggle":
        setMasksHidden((v) => !v);
        break;
      case "view.fit":
        fit();
        break;
      case "brush.smaller":
        setBrushSize((s) => Math.max(1, Math.round(s / 1.25)));
        break;
      case "brush.larger":
        setBrushSize((s) => Math.min(500, Math.round(s * 1.25) + 1));
        break;
      case "accept":
        if (tool === "intellibrush" && proposal) {
          e.preventDefault();
          acceptProposal();
        } else if (tool === "polygon" && polygon.length >= 3) {
          e.preventDefault();
          closePolygon();
        }
        break;
      case "cancel":
        if (proposal || ibPoints.length || ibBox) discardIntelliBrush();
        else if (polygon.length) setPolygon([]);
        else if (selected !== null) setSelected(null);
        break;
      case "polygon.back":
        if (polygon.length) {
          e.preventDefault();
          setPolygon((p) => p.slice(0, -1));
        }
        break;
      case "object.delete":
        if (selected !== null) {
          doc.deleteObject(selected);
          setSelected(null);
        }
        break;
      case "asset.next":
        void goto(1);
        break;
      case "asset.prev":
        void goto(-1);
        break;
    }
  };
  useEffect(() => {
    const down = (e: KeyboardEvent) => keyHandler.current(e);
    const up = (e: KeyboardEvent) => {
      if (e.key === " ") spaceRef.current = false;
    };
    const blur = () => (spaceRef.current = false);
    window.addEventListener("keydown", down);
    window.addEventListener("keyup", up);
    window.addEventListener("blur", blur);
    return () => {
      window.removeEventListener("keydown", down);
      window.removeEventListener("keyup", up);
      window.removeEventListener("blur", blur);
    };
  }, []);

  useEffect(() => {
    if (!notice) return;
    const t = setTimeout(() => setNotice(null), 5000);
    return () => clearTimeout(t);
  }, [notice]);

  // Leaving IntelliBrush drops its prompts; leaving polygon drops the unfinished polygon.
  useEffect(() => {
    if (tool !== "intellibrush") discardIntelliBrush();
    if (tool !== "polygon") setPolygon([]);
  }, [tool]); // eslint-disable-line react-hooks/exhaustive-deps

  // ---- render --------------------------------------------------------------------------------
  const toggle = (set: Set<number>, id: number) => {
    const n = new Set(set);
    if (n.has(id)) n.delete(id);
    else n.add(id);
    return n;
  };

  return (
    <div className="annotator">
      <AnnotatorHeader
        assetName={asset.name}
        projectUrl={projectUrl}
        onLeave={(url) => void leaveTo(url)}
        onStep={(d) => void goto(d)}
        status={status}
        onStatus={(s) => void changeStatus(s)}
        saveState={saveState}
        saveError={saveError}
        conflict={!!conflict}
        onRetry={() => saver.retryNow()}
        onKeepMine={() => session.keepMine(conflict?.current ?? null)}
        onLoadTheirs={() => void session.discard().then(() => window.location.reload())}
        others={others}
        recovered={recovered}
        onHelp={() => setHelp(true)}
      />
      <div className="annotator-body">
        <Toolbox
          tool={tool}
          onTool={setTool}
          brushSize={brushSize}
          onBrushSize={setBrushSize}
          opacity={opacity}
          onOpacity={setOpacity}
          masksHidden={masksHidden}
          onMasksHidden={setMasksHidden}
          canUndo={doc.history.canUndo}
          canRedo={doc.history.canRedo}
          onUndo={undo}
          onRedo={redo}
          onFit={fit}
          zoomPct={zoomPct}
          fillTolerance={fillTolerance}
          onFillTolerance={setFillTolerance}
          fillOverwrite={fillOverwrite}
          onFillOverwrite={setFillOverwrite}
          ibMode={ibMode}
          ibBusy={ibBusy}
          proposal={proposal}
          canDiscard={!!proposal || ibPoints.length > 0 || !!ibBox}
          onAccept={acceptProposal}
          onDiscard={discardIntelliBrush}
          polygonPoints={polygon.length}
          onClosePolygon={closePolygon}
          onCancelPolygon={() => setPolygon([])}
        />
        <div
          className={`viewport tool-${tool}`}
          ref={viewportRef}
          tabIndex={0}
          role="application"
          aria-label={`Image ${asset.name}, ${doc.width} by ${doc.height} pixels. Press ? for shortcuts.`}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
          onPointerCancel={onPointerUp}
          onPointerLeave={onPointerLeave}
          onContextMenu={(e) => e.preventDefault()}
          data-testid="annotator-viewport"
        >
          <div className="stage" ref={stageRef} style={{ width: doc.width, height: doc.height }}>
            <img src={image.src} width={doc.width} height={doc.height} alt="" draggable={false} />
            <div
              ref={overlayRef}
              className="mask-layer"
              style={{ width: doc.width, height: doc.height, visibility: previewMasks ? "hidden" : undefined }}
            />
            <canvas ref={previewRef} className="preview-layer" hidden data-testid="revision-preview" />
            <canvas ref={proposalRef} className="proposal-layer" hidden />
          </div>
          <canvas ref={uiRef} className="ui-layer" />
          {notice && (
            <p className="notice" role="alert">
              {notice}
            </p>
          )}
        </div>
        <aside className="sidepanel">
          <ClassesPanel
            projectId={projectId}
            classes={classes}
            current={classIdx}
            onPick={pickClass}
            hidden={hiddenClasses}
            onToggle={(id) => setHiddenClasses((s) => toggle(s, id))}
          />
          <ReviewPanel
            key={asset.id}
            asset={asset}
            status={status}
            flush={() => saver.flush()}
            onDecided={(a) => setStatus(a.status)}
          />
          <RevisionPanel
            assetId={asset.id}
            current={session.revision}
            savedTick={savedTick}
            onPreview={setPreviewMasks}
            onRestore={restoreRevision}
          />
          <ObjectsPanel
            objects={doc.objects}
            classes={classes}
            selected={selected}
            onSelect={(o) => {
              setSelected(o.id);
              setNewObjectNext(false);
              const idx = classes.findIndex((x) => x.id === o.classId);
              if (idx >= 0) setClassIdx(idx);
            }}
            onSetClass={(id, classId) => doc.setObjectClass(id, classId)}
            hidden={hiddenObjects}
            onToggle={(id) => setHiddenObjects((s) => toggle(s, id))}
            onDelete={(id) => {
              doc.deleteObject(id);
              if (selected === id) setSelected(null);
            }}
          />
        </aside>
      </div>
      {help && <KeyboardHelp onClose={() => setHelp(false)} />}
    </div>
  );
}
