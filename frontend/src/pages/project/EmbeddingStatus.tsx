import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../../api/client";

/** GET /projects/{id}/intellibrush/embeddings/ */
interface EmbeddingsStatus {
  model_type: string;
  sam_available: boolean;
  total: number;
  ready: number;
  job: { id: number; status: string; progress: number; message: string; errors: unknown } | null;
}

const ACTIVE = new Set(["queued", "running"]);

/**
 * IntelliBrush readiness of a project: how many images have a SAM embedding (clicks on those are
 * instant), the precompute job's progress (polled while it runs), and a button to start one.
 */
export function EmbeddingStatus({ projectId, canStart }: { projectId: number; canStart: boolean }) {
  const qc = useQueryClient();
  const key = ["embeddings", projectId];
  const status = useQuery({
    queryKey: key,
    queryFn: () => api<EmbeddingsStatus>(`/projects/${projectId}/intellibrush/embeddings/`),
    // Poll while a job runs; otherwise now and then (uploads start jobs too).
    refetchInterval: (q) => (q.state.data?.job && ACTIVE.has(q.state.data.job.status) ? 1500 : 15_000),
  });
  const start = useMutation({
    mutationFn: () => api(`/projects/${projectId}/intellibrush/embeddings/`, { method: "POST" }),
    onSettled: () => qc.invalidateQueries({ queryKey: key }),
  });
  const s = status.data;
  if (!s || s.total === 0) return null;
  const running = !!s.job && ACTIVE.has(s.job.status);
  return (
    <div className="embedding-status" data-testid="embedding-status" data-ready={s.ready} data-total={s.total}>
      <strong>IntelliBrush</strong>{" "}
      {s.sam_available ? (
        <>
          <span className="muted small">SAM {s.model_type}</span>{" "}
          <progress max={s.total} value={s.ready} aria-label="Images with a SAM embedding" />{" "}
          <span role="status">
            {s.ready} / {s.total} images ready
            {running && s.job ? ` · computing ${Math.round(s.job.progress * 100)}%` : ""}
            {s.job?.status === "failed" ? ` · last job failed: ${s.job.message}` : ""}
          </span>{" "}
          {canStart && s.ready < s.total && !running && (
            <button type="button" onClick={() => start.mutate()} disabled={start.isPending}>
              Compute embeddings
            </button>
          )}
          {start.error && (
            <span className="error" role="alert">
              {start.error.message}
            </span>
          )}
        </>
      ) : (
        <span className="muted small" role="status">
          no SAM weights for {s.model_type}: clicks use the classical fallback (see the IntelliBrush panel for how to
          install them)
        </span>
      )}
    </div>
  );
}
