import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api/client";
import type { MaskEntry, Page } from "../api/types";

export interface Revision {
  id: number;
  number: number;
  instance_count: number;
  source: string;
  restored_from: number | null;
  created_by: string | null;
  created_at: string;
}

interface Props {
  assetId: number;
  /** Revision the editor holds (its saves are conditional on it). */
  current: number | null;
  /** Bumps when a save lands, so the list refreshes. */
  savedTick: number;
  /** Show a revision's masks over the image (null: stop previewing). */
  onPreview: (masks: MaskEntry[] | null) => void;
  /** Make a revision current again (the page saves pending edits first, then reloads). */
  onRestore: (revision: Revision) => Promise<void>;
}

/** The asset's revision history (who, when, how many objects), with preview and restore. */
export function RevisionPanel({ assetId, current, savedTick, onPreview, onRestore }: Props) {
  const [open, setOpen] = useState(false);
  const [previewing, setPreviewing] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const list = useQuery({
    queryKey: ["mask-revisions", assetId, savedTick],
    queryFn: () => api<Page<Revision>>(`/assets/${assetId}/masks/revisions/`, { query: { page_size: 50 } }),
    enabled: open,
  });

  const preview = async (r: Revision) => {
    if (previewing === r.id) {
      setPreviewing(null);
      onPreview(null);
      return;
    }
    setError(null);
    try {
      const detail = await api<Revision & { masks: MaskEntry[] }>(`/assets/${assetId}/masks/revisions/${r.id}/`);
      setPreviewing(r.id);
      onPreview(detail.masks);
    } catch (e) {
      setError((e as Error).message);
    }
  };

  const restore = async (r: Revision) => {
    if (!window.confirm(`Make revision ${r.number} current again? The current masks stay in the history.`)) return;
    setBusy(true);
    setError(null);
    try {
      onPreview(null);
      await onRestore(r);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="history-title" className="history">
      <h2 id="history-title">
        <button type="button" className="linkish" aria-expanded={open} onClick={() => setOpen((o) => !o)}>
          History {open ? "▾" : "▸"}
        </button>
      </h2>
      {open && (
        <>
          {list.isPending && <p className="muted small">Loading…</p>}
          {list.error && <p className="error">{list.error.message}</p>}
          {error && <p className="error" role="alert">{error}</p>}
          {list.data && list.data.results.length === 0 && <p className="muted small">No saved revision yet.</p>}
          <ol className="revision-list">
            {list.data?.results.map((r) => (
              <li key={r.id} className={r.number === current ? "active" : ""} data-revision={r.number}>
                <div>
                  <strong>#{r.number}</strong> {r.created_by ?? "someone"} ·{" "}
                  <time dateTime={r.created_at} title={new Date(r.created_at).toLocaleString()}>
                    {new Date(r.created_at).toLocaleString()}
                  </time>
                </div>
                <div className="muted small">
                  {r.instance_count} object{r.instance_count === 1 ? "" : "s"} · {r.source}
                  {r.restored_from ? ` of #${r.restored_from}` : ""}
                  {r.number === current ? " · current" : ""}
                </div>
                <div className="row">
                  <button type="button" aria-pressed={previewing === r.id} onClick={() => void preview(r)}>
                    {previewing === r.id ? "End preview" : "Preview"}
                  </button>
                  {r.number !== current && (
                    <button type="button" disabled={busy} onClick={() => void restore(r)}>
                      Restore
                    </button>
                  )}
                </div>
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}
