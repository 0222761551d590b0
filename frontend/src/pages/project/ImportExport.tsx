import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import { API, ApiError, errorFrom, uploadForm } from "../../api/client";
import { useJob } from "../../api/hooks";
import type { Job } from "../../api/types";
import { ActiveImports, ImportReport } from "./ImportReport";

/** Progress and outcome of a server job (imports, exports). `report` replaces the raw
 *  errors/result view (the import shows its own). */
export function JobProgress({
  jobId,
  onDone,
  report,
}: {
  jobId: number;
  onDone?: (job: Job) => void;
  report?: (job: Job) => ReactNode;
}) {
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
      {report?.(j)}
      {!report && j.status === "failed" && (
        <pre className="error" role="alert">
          {JSON.stringify(j.errors, null, 2)}
        </pre>
      )}
      {!report && j.status === "succeeded" && j.result && Object.keys(j.result).length > 0 && (
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
  const [format, setFormat] = useState("");
  const [upload, setUpload] = useState(0);
  const [importJob, setImportJob] = useState<number | null>(null);
  const [importError, setImportError] = useState<ApiError | null>(null);
  const [exportFormat, setExportFormat] = useState("coco");
  const [exportJob, setExportJob] = useState<number | null>(null);
  const [exportError, setExportError] = useState<string | null>(null);
  const [exporting, setExporting] = useState(false);
  const [withImages, setWithImages] = useState(true);
  const [withUnlabeled, setWithUnlabeled] = useState(false);

  const startImport = async (opts: { format?: string; onError?: "skip" } = {}) => {
    if (!file) return;
    setImportError(null);
    setImportJob(null);
    const form = new FormData();
    form.append("file", file, file.name);
    const chosen = opts.format ?? format;
    if (chosen) form.append("format", chosen);
    if (opts.onError) form.append("on_error", opts.onError);
    try {
      const res = await uploadForm<Job & { error?: unknown }>(`/projects/${projectId}/imports/`, form, setUpload);
      if (res.status >= 400 || !res.body) throw errorFrom(res.status, res.body, `Import failed (${res.status})`);
      setImportJob(res.body.id);
    } catch (err) {
      setImportError(err instanceof ApiError ? err : new ApiError(0, "network", String(err)));
    }
  };
  const submitImport = (e: FormEvent) => {
    e.preventDefault();
    void startImport();
  };
  const errorDetails = (importError?.details ?? {}) as {
    problems?: { code?: string; message?: string; where?: string }[];
    detected?: { name: string; title: string };
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
          <p className="muted">
            A label file (COCO or Label Studio JSON, LabelMe JSON, CVAT XML) or a zip with images and labels
            (also VOC / Cityscapes / ADE20K class-map PNGs and Roboflow or Datature COCO exports).
          </p>
          <label>
            Format
            <select name="import-format" value={format} onChange={(e) => setFormat(e.target.value)}>
              <option value="">Detect from the file</option>
              <option value="coco">COCO (mask RLE / polygons)</option>
              <option value="labelme">LabelMe</option>
              <option value="png">PNG class maps (zip)</option>
              <option value="semantic_png">VOC / Cityscapes / ADE20K class maps (zip)</option>
              <option value="cvat">CVAT for images 1.1 (XML)</option>
              <option value="label_studio">Label Studio JSON</option>
              <option value="roboflow_coco">COCO from Roboflow / Datature</option>
            </select>
          </label>
          <label>
            File
            <input name="import-file" type="file" accept=".json,.zip,.xml" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
          </label>
          <button type="submit" className="primary" disabled={!file}>
            Import
          </button>
          {upload > 0 && upload < 1 && <progress max={1} value={upload} aria-label="Import upload progress" />}
          {importError && (
            <div className="error" role="alert">
              <p>{importError.message}</p>
              {errorDetails.problems && errorDetails.problems.length > 0 && (
                <ul className="import-items">
                  {errorDetails.problems.map((p, n) => (
                    <li key={n}>
                      {p.where && <code className="where">{p.where}</code>} {p.message}
                    </li>
                  ))}
                </ul>
              )}
              {importError.code === "wrong_format" && errorDetails.detected && (
                <button
                  type="button"
                  onClick={() => {
                    setFormat(errorDetails.detected!.name);
                    void startImport({ format: errorDetails.detected!.name });
                  }}
                >
                  Import as {errorDetails.detected.title}
                </button>
              )}
            </div>
          )}
          <ActiveImports projectId={projectId} hide={importJob} />
          {importJob !== null && (
            <JobProgress
              key={importJob}
              jobId={importJob}
              onDone={() => {
                qc.invalidateQueries({ queryKey: ["assets", projectId] });
                qc.invalidateQueries({ queryKey: ["classes", projectId] });
              }}
              report={(job) => (
                <ImportReport
                  job={job}
                  onImportRest={() =>
                    void startImport({
                      // a detected format is detected again; a chosen one is kept
                      format:
                        job.params?.format_given && typeof job.params.format === "string" ? job.params.format : undefined,
                      onError: "skip",
                    })
                  }
                />
              )}
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
            <option value="semantic_png">VOC-style class-map PNGs</option>
            <option value="cvat">CVAT for images 1.1</option>
            <option value="label_studio">Label Studio JSON</option>
            <option value="roboflow_coco">COCO (Roboflow layout)</option>
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
