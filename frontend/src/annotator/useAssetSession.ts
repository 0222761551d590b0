/**
 * The React side of an AssetSession: created once for the asset the component shows, closed
 * when it goes (its pending edits journaled and saved in the background; reopening the asset
 * waits for that save), with the save state as React state.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { api, ApiError } from "../api/client";
import type { AssetStatus } from "../api/types";
import { journal, registerClosing } from "./assetBundle";
import type { SaveState } from "./autosave";
import type { MaskDocument } from "./maskDocument";
import { AssetSession } from "./session";

export interface SessionView {
  session: AssetSession;
  saveState: SaveState;
  saveError: string | null;
  /** Set after a 409: the revision that is current on the server. */
  conflict: { current: number | null } | null;
  /** Counts accepted saves (lists that depend on the revisions refresh on it). */
  savedTick: number;
  status: AssetStatus;
  setStatus: (s: AssetStatus) => void;
}

export function useAssetSession(opts: {
  projectId: number;
  assetId: number;
  assetStatus: AssetStatus;
  initialDoc: () => MaskDocument;
  initialRevision: number | null;
  restored?: boolean;
}): SessionView {
  const qc = useQueryClient();
  const [saveState, setSaveState] = useState<SaveState>("saved");
  const [saveError, setSaveError] = useState<string | null>(null);
  const [conflict, setConflict] = useState<{ current: number | null } | null>(null);
  const [savedTick, setSavedTick] = useState(0);
  const [status, setStatus] = useState<AssetStatus>(opts.assetStatus);
  const [session] = useState(
    () =>
      new AssetSession({
        assetId: opts.assetId,
        doc: opts.initialDoc(),
        revision: opts.initialRevision,
        unsaved: opts.restored,
        journal,
        save: (id, body) =>
          api<{ revision: number | null; status?: AssetStatus }>(`/assets/${id}/masks/`, { method: "PUT", body }),
        isTransient: (e) => !(e instanceof ApiError) || e.transient,
        onSaved: (res) => {
          setSavedTick((t) => t + 1);
          if (res.status) setStatus(res.status as AssetStatus); // the server marks labeled assets
          qc.invalidateQueries({ queryKey: ["assets", opts.projectId] });
        },
        onSaveState: (s, e) => {
          setSaveState(s);
          setSaveError(e ? (e instanceof Error ? e.message : String(e)) : null);
          setConflict(
            e instanceof ApiError && e.status === 409
              ? { current: (e.details as { current_revision?: number | null } | null)?.current_revision ?? null }
              : null,
          );
        },
      }),
  );
  // The close is deferred a tick so StrictMode's simulated unmount/remount does not end a live session.
  const closeTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => {
    if (closeTimer.current) clearTimeout(closeTimer.current);
    return () => {
      closeTimer.current = setTimeout(() => registerClosing(session.assetId, session.close()), 0);
    };
  }, [session]);
  useEffect(() => {
    const warn = (e: BeforeUnloadEvent) => {
      if (!session.closed && session.hasUnsaved) {
        void session.writeJournal();
        void session.saver.flush();
        e.preventDefault();
      }
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [session]);
  return { session, saveState, saveError, conflict, savedTick, status, setStatus };
}
