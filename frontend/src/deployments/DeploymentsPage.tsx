/**
 * The project's Deployments page: deploy a trained artifact (runtime, device, replicas) and
 * the list of deployments with their status. `?artifact=<id>` (from the training pages)
 * preselects the artifact to deploy.
 */
import { useEffect, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { useProject } from "../api/hooks";
import { DEVICES, RUNTIMES, useDeploy, useDeployments } from "../api/deployments";
import { useArtifacts } from "../api/training";
import { useTitle } from "../components/useTitle";
import "../training/training.css";
import "./deployments.css";

export function DeploymentStatus({ status }: { status: string }) {
  return <span className={`run-status dep-${status}`}>{status}</span>;
}

export function DeploymentsPage() {
  const { projectId } = useParams();
  const pid = Number(projectId);
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const project = useProject(pid);
  const artifacts = useArtifacts(pid);
  const deployments = useDeployments(pid);
  const deploy = useDeploy(pid);
  const [artifact, setArtifact] = useState<string>(params.get("artifact") ?? "");
  const [runtime, setRuntime] = useState<string>("onnxruntime");
  const [device, setDevice] = useState<string>("cpu");
  const [replicas, setReplicas] = useState("1");
  const [name, setName] = useState("");
  useTitle(project.data ? `Deployments · ${project.data.name}` : "Deployments");
  const isOwner = project.data?.role === "owner";

  useEffect(() => {
    if (!artifact && artifacts.data?.results.length) setArtifact(String(artifacts.data.results[0].id));
  }, [artifact, artifacts.data]);

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    deploy.mutate(
      { artifact: Number(artifact), runtime, device, replicas: Number(replicas) || 1, name },
      { onSuccess: (d) => navigate(`/projects/${pid}/deployments/${d.id}`) },
    );
  };

  return (
    <section className="page deployments">
      <h1>
        {project.data?.name ?? "…"} <span className="muted small">Deployments</span>
      </h1>
      <div className="training-layout">
        {project.data && !isOwner ? (
          <p className="card muted">Only project owners deploy models; you are {project.data.role}.</p>
        ) : (
        <form className="card builder" onSubmit={submit} aria-label="Deploy a model">
          <h2>Deploy a model</h2>
          {artifacts.data?.results.length === 0 && (
            <p className="muted">
              No trained model yet. <Link to={`/projects/${pid}/training`}>Train one</Link> first.
            </p>
          )}
          <label>
            Artifact
            <select name="artifact" value={artifact} onChange={(e) => setArtifact(e.target.value)}>
              {artifacts.data?.results.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.name} (#{a.id})
                </option>
              ))}
            </select>
          </label>
          <label>
            Name
            <input name="name" value={name} placeholder="(automatic)" onChange={(e) => setName(e.target.value)} />
          </label>
          <label>
            Runtime
            <select name="runtime" value={runtime} onChange={(e) => setRuntime(e.target.value)}>
              {RUNTIMES.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          </label>
          <label>
            Device
            <select name="device" value={device} onChange={(e) => setDevice(e.target.value)}>
              {DEVICES.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          </label>
          <label>
            Replicas
            <input name="replicas" type="number" min={1} value={replicas} onChange={(e) => setReplicas(e.target.value)} />
          </label>
          {deploy.error && (
            <p className="error" role="alert">
              {deploy.error.message}
            </p>
          )}
          <div className="row">
            <button type="submit" className="primary" disabled={!isOwner || !artifact || deploy.isPending}>
              {deploy.isPending ? "Deploying…" : "Deploy"}
            </button>
          </div>
        </form>
        )}

        <section className="card">
          <h2>Deployments</h2>
          {deployments.error && <p className="error">{deployments.error.message}</p>}
          {deployments.data?.results.length === 0 && <p className="muted">Nothing deployed yet.</p>}
          {!!deployments.data?.results.length && (
            <table className="runs" data-testid="deployment-list">
              <thead>
                <tr>
                  <th>deployment</th>
                  <th>status</th>
                  <th>artifact</th>
                  <th>runtime</th>
                  <th>load</th>
                </tr>
              </thead>
              <tbody>
                {deployments.data.results.map((d) => (
                  <tr key={d.id} data-testid="deployment-row" data-deployment-id={d.id} data-status={d.status}>
                    <td>
                      <Link to={`/projects/${pid}/deployments/${d.id}`}>{d.name}</Link>
                    </td>
                    <td>
                      <DeploymentStatus status={d.status} />
                      {d.reason && <span className="small error"> {d.reason}</span>}
                    </td>
                    <td>#{d.artifact}</td>
                    <td>
                      {d.runtime} · {d.device} · ×{d.replicas}
                    </td>
                    <td>{d.load_ms != null ? `${Math.round(d.load_ms)} ms` : "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      </div>
    </section>
  );
}
