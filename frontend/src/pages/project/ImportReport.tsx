import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, ApiError } from "../../api/client";
import type { Job, Page } from "../../api/types";
import { countsLine, summarizeImport, type ImportItem } from "./importReport";

function ItemList({ title, items, tone, open }: { title: string; items: ImportItem[]; tone: string; open?: boolean }) {
  if (!items.length) return null;
  return (
    <details className={`import-items ${tone}`} open={open} aria-label={title}>
      <summary>
        {title} ({items.length})
      </summary>
      <ul>
        {items.map((item, n) => (
          <li key={n}>
            {item.where && <code className="where">{item.where}</code>} <span>{item.text}</span>
          </li>
        ))}
      </ul>
    </details>
  );
}

/** What an import job found: the format it read (and why), the counts, and every error,
 *  repair, skip and left-out item with its place; "Import the rest" and "Cancel". */
export function ImportReport({ job, onImportRest }: { job: Job; onImportRest?: () => void }) {
  const s = summarizeImport(job);
  const [cancelError, setCancelError] = useState<string | null>(null);
  const cancel = async () => {
    setCancelError(null);
    try {
      await api(`/jobs/${job.id}/cancel/`, { method: "POST" });
    } catch (err) {
      setCancelError(err instanceof ApiError ? err.message : String(err));
    }
  };
  const active = job.status === "queued" || job.status === "running";
  return (
    <div className="import-report" data-status={job.status}>
      {s.format && (
        <p className="import-format" data-format={s.format.name}>
          Format: <strong>{s.format.title}</strong>
          {s.format.detected ? " (detected" : " (chosen"}
          {s.format.reason ? `: ${s.format.reason})` : ")"}
        </p>
      )}
      {s.counts && job.status === "succeeded" && <p className="import-counts">{countsLine(s.counts)}</p>}
      <ItemList title="Errors" items={s.errors} tone="error" open />
      <ItemList title="Left out" items={s.leftOut} tone="error" open />
      <ItemList title="Repaired" items={s.warnings} tone="warning" open={s.warnings.length <= 20} />
      <ItemList title="Skipped" items={s.skipped} tone="muted" open={s.skipped.length <= 20} />
      {s.canImportRest && onImportRest && (
        <p>
          Nothing was imported.{" "}
          <button type="button" onClick={onImportRest}>
            Import the rest
          </button>{" "}
          <span className="muted">leaves out the items with errors and imports everything else.</span>
        </p>
      )}
      {active && (
        <button type="button" onClick={cancel}>
          Cancel import
        </button>
      )}
      {cancelError && (
        <p className="error" role="alert">
          {cancelError}
        </p>
      )}
    </div>
  );
}

/** Imports of the project still queued or running (a stuck one included, with its
 *  attempts), each with its report and a Cancel button. `hide`: the one shown already. */
export function ActiveImports({ projectId, hide }: { projectId: number; hide: number | null }) {
  const jobs = useQuery({
    queryKey: ["jobs", projectId, "import", "active"],
    queryFn: () => api<Page<Job>>(`/projects/${projectId}/jobs/`, { query: { kind: "import", active: "true" } }),
    refetchInterval: 3000,
  });
  const list = (jobs.data?.results ?? []).filter((j) => j.id !== hide);
  if (!list.length) return null;
  return (
    <section aria-label="Imports in progress" className="active-imports">
      <h3>Imports in progress</h3>
      {list.map((j) => (
        <div key={j.id} className="job" data-status={j.status}>
          <span role="status">
            {String(j.params?.name ?? `import ${j.id}`)}: {j.status} {Math.round(j.progress * 100)}% {j.message}
            {Number(j.params?.attempts ?? 0) > 1 ? ` (attempt ${String(j.params?.attempts)})` : ""}
          </span>
          <ImportReport job={j} />
        </div>
      ))}
    </section>
  );
}
