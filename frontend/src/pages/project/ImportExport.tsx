import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState, type FormEvent } from "react";
import { API, ApiError, errorFrom, uploadForm } from "../../api/client";
import { useJob } from "../../api/hooks";
import type { Job } from "../../api/types";

/** Progress and outcome of a server job (imports, exports). */
export function JobProgress({ jobId, onDone }: { jobId: number; onDone?: (job: Job) => void }) {
  const job = useJob(jobId);
  const j = job.data;
  const finished = j?.status === "succeeded" || j?.status === "failed";
  const reported = useRef(false);
  useEffect(() => {
    if (finished && j && !reported.current) {
      reported.current = true;
      onDone?.(j);
    }
  }, [finished, j, onDone]);
  if (job.error) return <p className="error">{job.error.message}</p>;
  if (!j) return <p role="status">Starting…</p>;
  return (
    <div className="job" data-status={j.status}>
      <progress max={1} value={j.progress} aria-label={`${j.kind} progress`} />
      <span role="status">
        {j.status} {Math.round(j.progress * 100)}% {j.message}
      </span>
      {j.status === "failed" && (
        <pre className="error" role="alert">
          {JSON.stringify(j.errors, null, 2)}
        </pre>
      )}
      {j.status === "succeeded" && j.result && Object.keys(j.result).length > 0 && (
        <pre className="report">{JSON.stringify(j.result, null, 2)}</pre>
      )}
      {j.status === "succeeded" && j.download_url && (
        <a href={j.download_url} download className="button primary">
          Download
        </a>
      )}
    </div>
  );
}

export function ImportExport({ projectId, canImport }: { projectId: number; canImport: boolean }) {
  const qc = useQueryClient();
  const [file, setFile] = useState<File | null>(null);
  const [format, setFormat] = useState("coco");
  const [upload, setUpload] = useState(0);
  const [importJob, setImportJob] = useState<number | null>(null);
  const [importError, setImportError] = useState<string | null>(null);
  const [exportFormat, setExportFormat] = useState("coco");
  const [exportJob, setExportJob] = useState<number | null>(null);
  const [exportError, setExportError] = useState<string | null>(null);
  const [exporting, setExporting] = useState(false);
  const [withImages, setWithImages] = useState(true);
  const [withUnlabeled, setWithUnlabeled] = useState(false);

  const submitImport = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    setImportError(null);
    setImportJob(null);
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("format", format);
    try {
      const res = await uploadForm<Job & { error?: unknown }>(`/projects/${projectId}/imports/`, form, setUpload);
      if (res.status >= 400 || !res.body) throw errorFrom(res.status, res.body, `Import failed (${res.status})`);
      setImportJob(res.body.id);
    } catch (err) {
      setImportError(err instanceof ApiError ? err.message : String(err));
    }
  };

  const startExport = async () => {
    setExportError(null);
    setExportJob(null);
    setExporting(true);
    try {
      const q = new URLSearchParams({
        format: exportFormat,
        delivery: "job",
        images: String(withImages),
        include_unlabeled: String(withUnlabeled),
      });
      const url = `${API}/projects/${projectId}/export/?${q.toString()}`;
      const res = await fetch(url, { credentials: "same-origin" });
      const type = res.headers.get("Content-Type") ?? "";
      if (type.includes("application/json")) {
        const body = await res.json();
        if (!res.ok) throw errorFrom(res.status, body, `Export failed (${res.status})`);
        if (typeof body.id === "number" && "status" in body) {
          setExportJob(body.id);
          return;
        }
        downloadBlob(new Blob([JSON.stringify(body)], { type: "application/json" }), `export-${exportFormat}.json`);
      } else {
        if (!res.ok) throw new ApiError(res.status, "http_error", `Export failed (${res.status})`);
        const name = /filename="?([^";]+)"?/.exec(res.headers.get("Content-Disposition") ?? "")?.[1];
        downloadBlob(await res.blob(), name ?? `export-${exportFormat}`);
      }
    } catch (err) {
      setExportError(err instanceof Error ? err.message : String(err));
    } finally {
      setExporting(false);
    }
  };

  return (
    <div className="import-export">
      {canImport && (
        <form className="card" onSubmit={submitImport} aria-label="Import annotations">
          <h2>Import</h2>
          <p className="muted">COCO JSON, or LabelMe JSON / a zip with images.</p>
          <label>
            Format
            <select name="import-format" value={format} onChange={(e) => setFormat(e.target.value)}>
              <option value="coco">COCO (mask RLE / polygons)</option>
              <option value="labelme">LabelMe</option>
            </select>
          </label>
          <label>
            File
            <input name="import-file" type="file" accept=".json,.zip" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
          </label>
          <button type="submit" className="primary" disabled={!file}>
            Import
          </button>
          {upload > 0 && upload < 1 && <progress max={1} value={upload} aria-label="Import upload progress" />}
          {importError && (
            <p className="error" role="alert">
              {importError}
            </p>
          )}
          {importJob !== null && (
            <JobProgress
              jobId={importJob}
              onDone={() => {
                qc.invalidateQueries({ queryKey: ["assets", projectId] });
                qc.invalidateQueries({ queryKey: ["classes", projectId] });
              }}
            />
          )}
        </form>
      )}
      <section className="card" aria-label="Export dataset">
        <h2>Export</h2>
        <label>
          Format
          <select name="export-format" value={exportFormat} onChange={(e) => setExportFormat(e.target.value)}>
            <option value="coco">COCO (RLE masks)</option>
            <option value="labelme">LabelMe</option>
            <option value="png">PNG class maps</option>
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={withImages} onChange={(e) => setWithImages(e.target.checked)} /> Include
          the image files
        </label>
        <label className="check">
          <input type="checkbox" checked={withUnlabeled} onChange={(e) => setWithUnlabeled(e.target.checked)} />{" "}
          Include unlabeled assets
        </label>
        <button type="button" className="primary" onClick={startExport} disabled={exporting}>
          {exporting ? "Exporting…" : "Export"}
        </button>
        {exportError && (
          <p className="error" role="alert">
            {exportError}
          </p>
        )}
        {exportJob !== null && <JobProgress jobId={exportJob} />}
      </section>
    </div>
  );
}

function downloadBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
