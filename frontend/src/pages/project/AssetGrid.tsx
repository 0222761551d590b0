import { Link, useSearchParams } from "react-router";
import { useAssets, type AssetFilters } from "../../api/hooks";
import type { AssetSplit, AssetStatus } from "../../api/types";
import { Pager } from "../ProjectsPage";

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

export function AssetGrid({ projectId }: { projectId: number }) {
  const [filters, update] = useAssetFilters();
  const assets = useAssets(projectId, filters);
  const data = assets.data;
  const pages = data ? Math.max(1, Math.ceil(data.count / filters.pageSize)) : 1;
  const ctx = new URLSearchParams();
  if (filters.status) ctx.set("status", filters.status);
  if (filters.split) ctx.set("split", filters.split);
  ctx.set("page", String(filters.page));
  return (
    <div className="assets">
      <div className="toolbar" role="group" aria-label="Filters">
        <label>
          Status
          <select
            name="status"
            value={filters.status}
            onChange={(e) => update({ status: e.target.value as AssetStatus | "", page: 1 })}
          >
            <option value="">All</option>
            <option value="unlabeled">Unlabeled</option>
            <option value="labeled">Labeled</option>
            <option value="reviewed">Reviewed</option>
          </select>
        </label>
        <label>
          Split
          <select
            name="split"
            value={filters.split}
            onChange={(e) => update({ split: e.target.value as AssetSplit | "", page: 1 })}
          >
            <option value="">All</option>
            <option value="train">Train</option>
            <option value="val">Val</option>
            <option value="test">Test</option>
          </select>
        </label>
        <span className="muted" aria-live="polite">
          {data ? `${data.count} assets` : "Loading…"}
          {assets.isFetching && data ? " · updating" : ""}
        </span>
      </div>
      {assets.error && (
        <p className="error" role="alert">
          {assets.error.message}
        </p>
      )}
      {data && data.count === 0 && <p className="muted">No assets match. Drop images or videos above to upload.</p>}
      <ul className="asset-grid" aria-label="Assets">
        {data?.results.map((a, i) => (
          <li key={a.id}>
            <Link
              to={`/projects/${projectId}/annotate/${a.id}?${ctx.toString()}&i=${i}`}
              className="asset-tile"
              title={a.name}
            >
              {a.thumbnail_url ? (
                <img src={a.thumbnail_url} alt="" loading="lazy" decoding="async" width={160} height={120} />
              ) : (
                <span className="thumb-placeholder" aria-hidden="true">
                  {a.width}×{a.height}
                </span>
              )}
              <span className="asset-name">{a.name}</span>
              <span className={`badge status-${a.status}`}>{a.status}</span>
              <span className="badge">{a.split}</span>
            </Link>
          </li>
        ))}
      </ul>
      {pages > 1 && <Pager page={filters.page} pages={pages} onPage={(p) => update({ page: p })} />}
    </div>
  );
}
