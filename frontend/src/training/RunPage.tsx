/**
 * One training run: status and progress (step of total, images/s, ETA, device), cancel, live
 * curves (loss, learning rate; validation mIoU, F1, pixel accuracy), the evaluation views and
 * the artifact with a path to deploy it.
 */
import { useEffect, useMemo, useState } from "react";
import { Link, useParams } from "react-router";
import { useProject } from "../api/hooks";
import { FINISHED_STATUSES, useArtifact, useCancelRun, useRun, type TrainingRun } from "../api/training";
import { useTitle } from "../components/useTitle";
import { EvaluationView } from "./EvaluationView";
import { MetricChart, type ChartSeries } from "./MetricChart";
import { etaSeconds, formatDuration, type Point } from "./series";
import { useRunLive } from "./useRunLive";
import "./training.css";

const num = (key: string) => (p: Point) => {
  const v = (p.values as Record<string, unknown>)[key];
  return typeof v === "number" ? v : null;
};

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`run-status run-${status}`}>{status}</span>;
}

function useNow(active: boolean, ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [active, ms]);
  return now;
}

function Progress({ run, device }: { run: TrainingRun; device: string | null }) {
  const active = !FINISHED_STATUSES.includes(run.status);
  const now = useNow(active);
  const eta = active
    ? etaSeconds({
        step: run.step,
        totalSteps: run.total_steps,
        imagesPerSecond: run.images_per_second,
        batchSize: run.config.batch_size * Math.max(1, run.config.num_gpus ?? 1),
        startedAt: run.started_at ? Date.parse(run.started_at) : null,
        now,
      })
    : 0;
  const fraction = run.total_steps ? run.step / run.total_steps : 0;
  return (
    <div className="run-progress card" data-testid="run-progress">
      <div className="row">
        <StatusBadge status={run.status} />
        <span data-testid="run-step">
          step {run.step} of {run.total_steps}
        </span>
        <progress max={1} value={fraction} aria-label="Training progress" />
      </div>
      <dl className="facts">
        <div>
          <dt>images/s</dt>
          <dd>{run.images_per_second != null ? run.images_per_second.toFixed(1) : "—"}</dd>
        </div>
        <div>
          <dt>ETA</dt>
          <dd>{active ? formatDuration(eta) : "—"}</dd>
        </div>
        <div>
          <dt>device</dt>
          <dd>{device ?? "—"}</dd>
        </div>
        <div>
          <dt>worker</dt>
          <dd>{run.worker || "—"}</dd>
        </div>
        <div>
          <dt>best {run.config.keep_best_metric ?? "metric"}</dt>
          <dd>{run.best_metric != null ? `${(run.best_metric * 100).toFixed(1)}% at step ${run.best_step}` : "—"}</dd>
        </div>
        <div>
          <dt>data</dt>
          <dd>
            {run.dataset?.train ?? "?"} train / {run.dataset?.val ?? "?"} val images
          </dd>
        </div>
      </dl>
      <p className="run-message" data-testid="run-message">
        {run.message}
      </p>
      {run.error && (
        <pre className="report error" role="alert">
          {run.error}
        </pre>
      )}
    </div>
  );
}

export function RunPage() {
  const { projectId, runId } = useParams();
  const pid = Number(projectId);
  const id = Number(runId);
  const project = useProject(pid);
  const runQuery = useRun(id, 5000);
  const run = runQuery.data;
  const live = useRunLive(id, run);
  const cancel = useCancelRun();
  const artifact = useArtifact(run?.artifact ?? null);
  useTitle(`Run ${runQuery.data?.number ?? id}${project.data ? ` · ${project.data.name}` : ""}`);

  const { train, eval: evals } = live.series;
  const lossSeries = useMemo<ChartSeries[]>(
    () => [
      { label: "train loss", color: "#4f8cff", points: train, pick: num("loss") },
      { label: "val loss", color: "#f97316", points: evals, pick: num("val_loss"), dash: [6, 4] },
    ],
    [train, evals],
  );
  const lrSeries = useMemo<ChartSeries[]>(() => [{ label: "learning rate", color: "#f59e0b", points: train, pick: num("lr") }], [train]);
  const evalSeries = useMemo<ChartSeries[]>(
    () => [
      { label: "val mIoU", color: "#22c55e", points: evals, pick: num("miou") },
      { label: "val mean F1", color: "#a78bfa", points: evals, pick: num("mean_f1") },
      { label: "val pixel accuracy", color: "#f472b6", points: evals, pick: num("pixel_accuracy") },
    ],
    [evals],
  );
  const lastTrain = train.length ? (train[train.length - 1].values as Record<string, unknown>) : null;
  const device = typeof lastTrain?.device === "string" ? lastTrain.device : null;

  if (runQuery.error) {
    return (
      <section className="page">
        <p className="error" role="alert">
          {runQuery.error.message}
        </p>
      </section>
    );
  }
  if (!run) return <p className="page-status">Loading…</p>;
  const active = !FINISHED_STATUSES.includes(run.status);
  const canEdit = project.data ? project.data.role !== "viewer" : false;

  return (
    <section className="page training-run" data-run-id={run.id} data-status={run.status}>
      <p className="small">
        <Link to={`/projects/${pid}/training`}>← Training</Link>
      </p>
      <h1>
        Run {run.number ?? run.id} <span className="muted small">{run.config.family}/{run.config.variant} · {run.config.resolution?.join("×")}</span>
      </h1>
      <div className="row run-actions">
        {active && canEdit && (
          <>
            <button type="button" className="danger" disabled={cancel.isPending || run.cancel_requested} onClick={() => cancel.mutate({ id: run.id })}>
              {run.cancel_requested ? "Cancelling…" : "Cancel run"}
            </button>
            {!run.cancel_requested && (
              <button
                type="button"
                disabled={cancel.isPending}
                title="Stop, and keep the best checkpoint so far (else the last) as an artifact"
                onClick={() => cancel.mutate({ id: run.id, keepBest: true })}
              >
                Cancel, keep best
              </button>
            )}
          </>
        )}
        {cancel.error && <span className="error" role="alert">{cancel.error.message}</span>}
        <span className={`socket-state small muted socket-${live.socket}`} data-testid="socket-state">
          {active ? socketText(live.socket, live.reconnects) : ""}
        </span>
      </div>
      <Progress run={run} device={device} />

      <h2>Curves</h2>
      <div className="charts">
        <MetricChart title="Loss (train and validation)" series={lossSeries} testId="chart-loss" />
        <MetricChart title="Learning rate" series={lrSeries} testId="chart-lr" />
        <MetricChart title="Validation metrics" series={evalSeries} testId="chart-eval" format={(v) => v.toFixed(3)} />
      </div>

      <h2>Evaluation</h2>
      <EvaluationView run={run} evals={evals} />

      <h2>Artifact</h2>
      {run.artifact === null ? (
        <p className="muted">{active ? "The trained model appears here when the run completes." : "This run left no artifact."}</p>
      ) : artifact.data ? (
        <div className="card artifact" data-testid="artifact">
          <p>
            <strong>{artifact.data.name}</strong> · {artifact.data.family}/{artifact.data.variant} · {formatBytes(artifact.data.size_bytes)}
          </p>
          <p className="row">
            {project.data?.role === "owner" && (
              <Link className="button primary" to={`/projects/${pid}/deployments?artifact=${artifact.data.id}`}>
                Deploy this model
              </Link>
            )}
            <span className="muted small">artifact {artifact.data.id}</span>
          </p>
        </div>
      ) : (
        <p className="muted">Loading artifact…</p>
      )}
    </section>
  );
}

function socketText(state: string, reconnects: number): string {
  switch (state) {
    case "open":
      return "● live";
    case "connecting":
      return reconnects ? `reconnecting (attempt ${reconnects})…` : "connecting…";
    case "waiting":
      return "connection lost; retrying…";
    case "denied":
      return "live updates are not allowed for this run";
    default:
      return "";
  }
}
