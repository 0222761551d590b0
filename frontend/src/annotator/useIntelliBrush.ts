/**
 * The IntelliBrush prompt of one asset: its session (embedding, decoder, refinement logits),
 * the include/exclude points and box, the pending request and the proposal. Created per asset;
 * a request still in flight when the asset closes is aborted, so its answer reaches nothing.
 */
import { useEffect, useMemo, useRef, useState } from "react";
import { IntelliBrushSession, type IbMode, type Proposal } from "./intellibrush";

export type IbPoint = [number, number, number];
export type IbBox = [number, number, number, number];

export function useIntelliBrush(assetId: number, notify: (message: string) => void) {
  const [points, setPoints] = useState<IbPoint[]>([]);
  const [box, setBox] = useState<IbBox | null>(null);
  const [proposal, setProposal] = useState<Proposal | null>(null);
  const [busy, setBusy] = useState(false);
  const [mode, setMode] = useState<IbMode | null>(null);
  const session = useMemo(() => new IntelliBrushSession(assetId, setMode), [assetId]);
  const abort = useRef<AbortController | null>(null);
  /** performance.now() of the click whose proposal is awaited, and click-to-drawn times (ms). */
  const clickAt = useRef<number | null>(null);
  const clickToDraw = useRef<number[]>([]);
  useEffect(() => () => abort.current?.abort(), [session]);

  /** Ask for the proposal of `pts` and `b` (the server needs an include point or a box). */
  const request = async (pts: IbPoint[], b: IbBox | null) => {
    setPoints(pts);
    setBox(b);
    clickAt.current = performance.now();
    abort.current?.abort();
    if (!b && !pts.some((p) => p[2] === 1)) {
      setProposal(null);
      return;
    }
    const ctl = new AbortController();
    abort.current = ctl;
    setBusy(true);
    try {
      const p = await session.propose({ points: pts, box: b ?? undefined }, ctl.signal);
      if (!ctl.signal.aborted) {
        setProposal(p);
        if (p.message) notify(p.message);
      }
    } catch (e) {
      if ((e as Error).name !== "AbortError") notify(`IntelliBrush: ${(e as Error).message}`);
    } finally {
      if (abort.current === ctl) setBusy(false);
    }
  };

  /** Drop the prompt and the proposal; the next click starts afresh. */
  const discard = () => {
    abort.current?.abort();
    session.reset();
    setBusy(false);
    setPoints([]);
    setBox(null);
    setProposal(null);
  };

  return { session, mode, points, box, proposal, busy, request, discard, clickAt, clickToDraw };
}
