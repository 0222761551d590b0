/**
 * The project's Training page: the workflow builder with Run Training, the runs with their
 * status (polled, so runs started through the API or another tab appear by themselves),
 * saved workflows (run again / edit) and the trained artifacts with a path to deploy.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { useProject } from "../api/hooks";
import {
  FINISHED_STATUSES,
  problemsOf,
  trainingKeys,
  useArtifacts,
  useRuns,
  useStartTraining,
  useWorkflows,
  type TrainingRun,
} from "../api/training";
import { useTitle } from "../components/useTitle";
import { configToForm, type BuilderForm } from "./config";
import { formatBytes, StatusBadge } from "./RunPage";
import { WorkflowBuilder } from "./WorkflowBuilder";
import "./training.css";

function when(iso: string | null): string {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function RunRow({ run, projectId }: { run: TrainingRun; projectId: number }) {
  const active = !FINISHED_STATUSES.includes(run.status);
  return (
    <tr data-testid="run-row" data-run-id={run.id} data-status={run.status}>
      <td>
        <Link to={`/projects/${projectId}/training/runs/${run.id}`}>Run {run.number ?? run.id}</Link>
      </td>
      <td>
        <StatusBadge status={run.status} />
      </td>
      <td>
        {run.config.family}/{run.config.variant}
      </td>
      <td>
        {run.step} / {run.total_steps}
        {active && <progress max={run.total_steps || 1} value={run.step} aria-label={`Progress of run ${run.id}`} />}
      </td>
      <td>{run.best_metric != null ? `${(run.best_metric * 100).toFixed(1)}%` : "—"}</td>
      <td className="small muted">{when(run.created_at)}</td>
      <td className="small run-message-cell">
        {run.error ? <span className="error">{run.error.length > 200 ? `${run.error.slice(0, 200)}…` : run.error}</span> : run.message}
      </td>
    </tr>
  );
}

export function TrainingPage() {
  const { projectId } = useParams();
  const id = Number(projectId);
  const navigate = useNavigate();
  const project = useProject(id);
  const runs = useRuns(id);
  const workflows = useWorkflows(id);
  const artifacts = useArtifacts(id);
  const rerun = useStartTraining(id);
  const [initial, setInitial] = useState<BuilderForm | undefined>();
  useTitle(project.data ? `Training · ${project.data.name}` : "Training");
  const canEdit = project.data ? project.data.role !== "viewer" : false;
  const openRun = (run: TrainingRun) => navigate(`/projects/${id}/training/runs/${run.id}`);
  // A run that completes leaves an artifact: read the artifact list again when one does.
  const qc = useQueryClient();
  const completed = (runs.data?.results ?? []).filter((r) => r.status === "completed").map((r) => r.id).join(",");
  useEffect(() => {
    if (completed) void qc.invalidateQueries({ queryKey: trainingKeys.artifacts(id) });
  }, [completed, id, qc]);

  return (
    <section className="page training">
      <h1>
        {project.data?.name ?? "…"} <span className="muted small">Training</span>
      </h1>
      <div className="training-layout">
        <div>
          {canEdit ? (
            <WorkflowBuilder projectId={id} initial={initial} onStarted={openRun} />
          ) : (
            <p className="muted">Viewers can watch runs; annotators and owners can start them.</p>
          )}
        </div>
        <div className="training-side">
          <section className="card">
            <h2>
              Runs <span className="muted small">{runs.data ? `(${runs.data.count})` : ""}</span>
            </h2>
            {runs.error && <p className="error">{runs.error.message}</p>}
            {runs.data && runs.data.results.length === 0 && <p className="muted">No runs yet.</p>}
            {runs.data && runs.data.results.length > 0 && (
              <table className="runs" data-testid="run-list">
                <thead>
                  <tr>
                    <th>run</th>
                    <th>status</th>
                    <th>model</th>
                    <th>step</th>
                    <th>best</th>
                    <th>created</th>
                    <th>message</th>
                  </tr>
                </thead>
                <tbody>
                  {runs.data.results.map((r) => (
                    <RunRow key={r.id} run={r} projectId={id} />
                  ))}
                </tbody>
              </table>
            )}
          </section>

          <section className="card">
            <h2>Workflows</h2>
            {rerun.error && (
              <p className="error" role="alert">
                {problemsOf(rerun.error).join("; ")}
              </p>
            )}
            {workflows.data?.length === 0 && <p className="muted">Saved with every Run Training.</p>}
            <ul className="workflow-list">
              {workflows.data?.map((w) => (
                <li key={w.id} data-testid="workflow">
                  <span>
                    <strong>{w.name}</strong>{" "}
                    <span className="muted small">
                      {w.config.family}/{w.config.variant} · {w.config.steps} steps · lr {w.config.lr}
                    </span>
                  </span>
                  {canEdit && (
                    <span className="row">
                      <button type="button" onClick={() => rerun.mutate({ name: w.name, config: w.config, val_fraction: w.val_fraction, workflowId: w.id }, { onSuccess: openRun })}>
                        Run again
                      </button>
                      <button type="button" onClick={() => setInitial(configToForm(`${w.name} (copy)`, w.config, w.val_fraction))}>
                        Edit as new
                      </button>
                    </span>
                  )}
                </li>
              ))}
            </ul>
          </section>

          <section className="card">
            <h2>Artifacts</h2>
            {artifacts.data?.results.length === 0 && <p className="muted">A completed run leaves a trained model here.</p>}
            <ul className="workflow-list" data-testid="artifact-list">
              {artifacts.data?.results.map((a) => (
                <li key={a.id}>
                  <span>
                    <strong>{a.name}</strong>{" "}
                    <span className="muted small">
                      {a.family}/{a.variant} · {formatBytes(a.size_bytes)}
                      {a.run !== null && (
                        <>
                          {" "}
                          · <Link to={`/projects/${id}/training/runs/${a.run}`}>run {a.run}</Link>
                        </>
                      )}
                    </span>
                  </span>
                  {project.data?.role === "owner" && (
                    <Link className="button" to={`/projects/${id}/deployments?artifact=${a.id}`}>
                      Deploy
                    </Link>
                  )}
                </li>
              ))}
            </ul>
          </section>
        </div>
      </div>
    </section>
  );
}
