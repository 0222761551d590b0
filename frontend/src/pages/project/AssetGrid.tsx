import { useState, type MouseEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import {
  SPLITS,
  STATUSES,
  STATUS_LABEL,
  useAssetSummary,
  useNextAsset,
  type AssetSelection,
  type AssetSummary,
} from "../../api/assets";
import { useAssets, type AssetFilters } from "../../api/hooks";
import type { AssetSplit, AssetStatus } from "../../api/types";
import { Pager } from "../ProjectsPage";
import { AutoSplit } from "./AutoSplit";
import { NONE, pickClick, type Picked } from "./selection";
import { BulkBar } from "./BulkBar";
import "./manage.css";

export const ASSET_PAGE_SIZE = 60;

/** Filters and page of the asset grid, kept in the URL so reloads and the annotator share them. */
export function useAssetFilters(): [AssetFilters, (patch: Partial<AssetFilters>) => void] {
  const [params, setParams] = useSearchParams();
  const filters: AssetFilters = {
    status: (params.get("status") ?? "") as AssetStatus | "",
    split: (params.get("split") ?? "") as AssetSplit | "",
    page: Math.max(1, Number(params.get("page") ?? 1) || 1),
    pageSize: ASSET_PAGE_SIZE,
  };
  const update = (patch: Partial<AssetFilters>) => {
    const next = { ...filters, ...patch };
    const p = new URLSearchParams();
    if (next.status) p.set("status", next.status);
    if (next.split) p.set("split", next.split);
    if (next.page > 1) p.set("page", String(next.page));
    setParams(p, { replace: true });
  };
  return [filters, update];
}

export function AssetGrid({ projectId, canEdit, isOwner }: { projectId: number; canEdit: boolean; isOwner: boolean }) {
  const [filters, update] = useAssetFilters();
  const assets = useAssets(projectId, filters);
  const summary = useAssetSummary(projectId);
  const next = useNextAsset(projectId);
  const navigate = useNavigate();
  const [picked, setPicked] = useState<Picked>(NONE);
  const [showMasks, setShowMasks] = useState(true);
  const [nothingLeft, setNothingLeft] = useState<string | null>(null);
  const [bulkDone, setBulkDone] = useState<string | null>(null);
  const data = assets.data;
  const results = data?.results ?? [];
  const pages = data ? Math.max(1, Math.ceil(data.count / filters.pageSize)) : 1;
  const ctx = new URLSearchParams();
  if (filters.status) ctx.set("status", filters.status);
  if (filters.split) ctx.set("split", filters.split);
  ctx.set("page", String(filters.page));

  const setFilter = (patch: Partial<AssetFilters>) => {
    setPicked(NONE); // a selection belongs to what was shown
    update({ ...patch, page: 1 });
  };
  const toggle = (index: number, e: MouseEvent) =>
    setPicked((p) => pickClick(p, results.map((a) => a.id), index, e.shiftKey));
  const selectedCount = picked.allMatching ? (data?.count ?? 0) : picked.ids.size;
  const selection: AssetSelection = picked.allMatching
    ? { filter: { ...(filters.status ? { status: filters.status } : {}), ...(filters.split ? { split: filters.split } : {}) } }
    : { ids: [...picked.ids] };

  const goNext = (purpose: "label" | "review") => {
    setNothingLeft(null);
    next.mutate(
      { purpose },
      {
        onSuccess: ({ asset }) => {
          if (!asset) {
            setNothingLeft(
              purpose === "label"
                ? "Nothing left to label that nobody else has open."
                : "Nothing waiting for review that nobody else has open.",
            );
          } else if (purpose === "label") navigate(`/projects/${projectId}/annotate/${asset.id}?${ctx.toString()}`);
          else navigate(`/projects/${projectId}/review/${asset.id}`);
        },
      },
    );
  };

  const counts = summary.data;
  return (
    <div className="assets">
      {counts && <SplitCounts summary={counts} />}
      <div className="toolbar" role="group" aria-label="Filters">
        <label>
          Status
          <select name="status" value={filters.status} onChange={(e) => setFilter({ status: e.target.value as AssetStatus | "" })}>
            <option value="">All{counts ? ` (${counts.total})` : ""}</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {STATUS_LABEL[s]}
                {counts ? ` (${counts.statuses[s]})` : ""}
              </option>
            ))}
          </select>
        </label>
        <label>
          Split
          <select name="split" value={filters.split} onChange={(e) => setFilter({ split: e.target.value as AssetSplit | "" })}>
            <option value="">All{counts ? ` (${counts.total})` : ""}</option>
            {SPLITS.map((s) => (
              <option key={s} value={s}>
                {s[0].toUpperCase() + s.slice(1)}
                {counts ? ` (${counts.splits[s].total})` : ""}
              </option>
            ))}
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={showMasks} onChange={(e) => setShowMasks(e.target.checked)} /> Show masks
        </label>
        <span className="muted" aria-live="polite">
          {data ? `${data.count} assets` : "Loading…"}
          {assets.isFetching && data ? " · updating" : ""}
        </span>
        {canEdit && (
          <span className="row next-buttons">
            <button type="button" className="primary" disabled={next.isPending} onClick={() => goNext("label")}>
              Next to label
            </button>
            <button type="button" disabled={next.isPending} onClick={() => goNext("review")}>
              Next to review
            </button>
          </span>
        )}
      </div>
      {(nothingLeft || next.error) && (
        <p className={next.error ? "error" : "muted"} role="status">
          {next.error?.message ?? nothingLeft}
        </p>
      )}
      {isOwner && counts && <AutoSplit projectId={projectId} locked={counts.locked} />}
      {canEdit && data && data.count > 0 && (
        <div className="row selection-bar" role="group" aria-label="Selection">
          <button type="button" onClick={() => setPicked({ ids: new Set(results.map((a) => a.id)), allMatching: false, anchor: null })}>
            Select page
          </button>
          <button type="button" onClick={() => setPicked({ ids: new Set(), allMatching: true, anchor: null })}>
            Select all {data.count} matching
          </button>
          {selectedCount > 0 && (
            <button type="button" onClick={() => setPicked(NONE)}>
              Clear selection
            </button>
          )}
          <span className="muted small">Click tiles' boxes to pick them; shift-click picks a range.</span>
        </div>
      )}
      {selectedCount > 0 && (
        <BulkBar
          projectId={projectId}
          count={selectedCount}
          selection={selection}
          canDelete={isOwner}
          onDone={(message) => {
            setPicked(NONE);
            setBulkDone(message);
          }}
        />
      )}
      {bulkDone && selectedCount === 0 && (
        <p className="muted" role="status">
          {bulkDone}
        </p>
      )}
      {assets.error && (
        <p className="error" role="alert">
          {assets.error.message}
        </p>
      )}
      {data && data.count === 0 && <p className="muted">No assets match. Drop images or videos above to upload.</p>}
      <ul className="asset-grid" aria-label="Assets">
        {results.map((a, i) => {
          const checked = picked.allMatching || picked.ids.has(a.id);
          return (
            <li key={a.id} className={checked ? "picked" : undefined}>
              {canEdit && (
                <input
                  type="checkbox"
                  className="pick"
                  aria-label={`Select ${a.name}`}
                  checked={checked}
                  onChange={() => undefined}
                  onClick={(e) => toggle(i, e)}
                />
              )}
              <Link
                to={`/projects/${projectId}/annotate/${a.id}?${ctx.toString()}&i=${i}`}
                className="asset-tile"
                title={a.review_comment ? `${a.name} — review: ${a.review_comment}` : a.name}
              >
                <span className="thumb">
                  {a.thumbnail_url ? (
                    <img src={a.thumbnail_url} alt="" loading="lazy" decoding="async" width={160} height={120} />
                  ) : (
                    <span className="thumb-placeholder" aria-hidden="true">
                      {a.width}×{a.height}
                    </span>
                  )}
                  {showMasks && a.overlay_url && (
                    <img className="mask-overlay" src={a.overlay_url} alt="" loading="lazy" data-testid="mask-overlay" />
                  )}
                </span>
                <span className="asset-name">{a.name}</span>
                <span>
                  <span className={`badge status-${a.status}`}>{STATUS_LABEL[a.status] ?? a.status}</span>
                  <span className="badge" data-testid="split">
                    {a.split}
                    {a.split_locked ? " ·placed" : ""}
                  </span>
                </span>
              </Link>
            </li>
          );
        })}
      </ul>
      {pages > 1 && <Pager page={filters.page} pages={pages} onPage={(p) => update({ page: p })} />}
    </div>
  );
}

/** Images per split (all / labelled), and a warning when val is too small to train. */
export function SplitCounts({ summary }: { summary: AssetSummary }) {
  return (
    <div className="split-counts" data-testid="split-counts">
      <span className="muted">Images per split:</span>
      {SPLITS.map((s) => (
        <span key={s} className="split-count" data-split={s}>
          <strong>{s}</strong> {summary.splits[s].total}{" "}
          <span className="muted small">({summary.splits[s].labeled} labelled)</span>
        </span>
      ))}
      {!summary.validation.ok && summary.total > 0 && (
        <p className="warning" role="note">
          {summary.validation.message}
        </p>
      )}
    </div>
  );
}
