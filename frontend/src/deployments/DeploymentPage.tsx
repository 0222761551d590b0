/**
 * One deployment: status, API keys (a new key's secret is shown once; list; revoke), a try-it
 * panel (upload an image, see the predicted masks over it and the JSON answer) and copyable
 * curl / Python snippets for the predict endpoint.
 */
import { useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { useClasses, useProject } from "../api/hooks";
import {
  useApiKeys,
  useCreateKey,
  useDeployment,
  usePredict,
  useRevokeKey,
  useUndeploy,
  type ApiKeyCreated,
  type PredictResult,
} from "../api/deployments";
import type { LabelClass } from "../api/types";
import { useTitle } from "../components/useTitle";
import { decodeToRowMajor, stringToCounts } from "../lib/rle";
import { DeploymentStatus } from "./DeploymentsPage";
import { absoluteUrl, curlSnippet, pythonSnippet } from "./snippets";
import "../training/training.css";
import "./deployments.css";

function CopyBlock({ label, text, testId }: { label: string; text: string; testId: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      setCopied(false);
    }
  };
  return (
    <div className="copy-block">
      <div className="row">
        <strong>{label}</strong>
        <button type="button" onClick={copy} aria-label={`Copy ${label}`}>
          {copied ? "Copied" : "Copy"}
        </button>
      </div>
      <pre className="report snippet" data-testid={testId}>
        {text}
      </pre>
    </div>
  );
}

function Keys({ deploymentId, onCreated }: { deploymentId: number; onCreated: (k: ApiKeyCreated) => void }) {
  const keys = useApiKeys(deploymentId);
  const create = useCreateKey(deploymentId);
  const revoke = useRevokeKey(deploymentId);
  const [name, setName] = useState("");
  const [rate, setRate] = useState("");
  const [fresh, setFresh] = useState<ApiKeyCreated | null>(null);
  return (
    <section className="card" aria-label="API keys">
      <h2>API keys</h2>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate(
            { name, rate },
            {
              onSuccess: (k) => {
                setFresh(k);
                onCreated(k);
                setName("");
              },
            },
          );
        }}
      >
        <label>
          Key name
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. mobile app" />
        </label>
        <label>
          Rate limit
          <input value={rate} onChange={(e) => setRate(e.target.value)} placeholder="default, or 120/min" />
        </label>
        <button type="submit" disabled={create.isPending}>
          Create key
        </button>
      </form>
      {create.error && (
        <p className="error" role="alert">
          {create.error.message}
        </p>
      )}
      {fresh && (
        <div className="new-key" role="status">
          <p>
            <strong>Copy this key now — it is not shown again.</strong>
          </p>
          <code data-testid="new-api-key">{fresh.key}</code>
          <button type="button" onClick={() => void navigator.clipboard?.writeText(fresh.key)}>
            Copy
          </button>
          <button type="button" onClick={() => setFresh(null)}>
            Done
          </button>
        </div>
      )}
      {keys.data && keys.data.length === 0 && <p className="muted">No keys yet.</p>}
      {keys.data && keys.data.length > 0 && (
        <table className="runs" data-testid="key-list">
          <thead>
            <tr>
              <th>name</th>
              <th>key</th>
              <th>rate</th>
              <th>created</th>
              <th>last used</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {keys.data.map((k) => (
              <tr key={k.id} data-testid="key-row" data-key-prefix={k.prefix} data-revoked={k.revoked}>
                <td>{k.name || "—"}</td>
                <td>
                  <code>tsk_{k.prefix}_…</code>
                </td>
                <td>{k.rate || "default"}</td>
                <td className="small">{new Date(k.created_at).toLocaleString()}</td>
                <td className="small">{k.last_used_at ? new Date(k.last_used_at).toLocaleString() : "never"}</td>
                <td>
                  {k.revoked ? (
                    <span className="muted">revoked</span>
                  ) : (
                    <button type="button" className="danger" disabled={revoke.isPending} onClick={() => revoke.mutate(k.id)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function hexRgb(color: string): [number, number, number] {
  const m = color.replace("#", "").match(/^([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i);
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 0, 255];
}

/** The uploaded image with the predicted masks drawn over it. */
function Overlay({ file, result, classes }: { file: File; result: PredictResult; classes: LabelClass[] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const url = useMemo(() => URL.createObjectURL(file), [file]);
  useEffect(() => () => URL.revokeObjectURL(url), [url]);
  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const { width: w, height: h } = result;
    c.width = w;
    c.height = h;
    const rgba = new Uint8ClampedArray(w * h * 4);
    const byId = new Map(classes.map((k) => [k.id, k]));
    const byLabel = new Map(classes.map((k) => [k.index + 1, k]));
    for (const p of result.predictions) {
      const cls = (p.class_id !== null ? byId.get(p.class_id) : undefined) ?? byLabel.get(p.label);
      const [r, g, b] = cls ? hexRgb(cls.color) : [255, 0, 255];
      const bits = decodeToRowMajor(stringToCounts(p.rle.counts), h, w);
      for (let i = 0; i < bits.length; i++) {
        if (!bits[i]) continue;
        rgba[i * 4] = r;
        rgba[i * 4 + 1] = g;
        rgba[i * 4 + 2] = b;
        rgba[i * 4 + 3] = 140;
      }
    }
    c.getContext("2d")!.putImageData(new ImageData(rgba, w, h), 0, 0);
  }, [result, classes]);
  return (
    <div className="sample-stack try-stack" style={{ aspectRatio: `${result.width} / ${result.height}` }} data-testid="try-overlay">
      <img src={url} alt="uploaded image" />
      <canvas ref={canvas} aria-label="predicted masks" />
    </div>
  );
}

function TryIt({ deploymentId, projectId, ready }: { deploymentId: number; projectId: number; ready: boolean }) {
  const predict = usePredict(deploymentId);
  const classes = useClasses(projectId);
  const [file, setFile] = useState<File | null>(null);
  return (
    <section className="card try-it" aria-label="Try it">
      <h2>Try it</h2>
      <label>
        Image
        <input
          type="file"
          accept="image/*"
          data-testid="try-input"
          disabled={!ready}
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (f) {
              setFile(f);
              predict.mutate(f);
            }
          }}
        />
      </label>
      {!ready && <p className="muted">Available once the deployment is ready.</p>}
      {predict.isPending && <p role="status">Segmenting…</p>}
      {predict.error && (
        <p className="error" role="alert">
          {predict.error.message}
        </p>
      )}
      {file && predict.data && (
        <div className="try-result">
          <Overlay file={file} result={predict.data} classes={classes.data ?? []} />
          <div>
            <p data-testid="try-summary">
              {predict.data.predictions.length} {predict.data.predictions.length === 1 ? "class" : "classes"} found ·{" "}
              {predict.data.timing_ms.total.toFixed(0)} ms (inference{" "}
              {predict.data.timing_ms.inference.toFixed(0)} ms)
            </p>
            <ul className="legend">
              {predict.data.predictions.map((p) => (
                <li key={p.label}>
                  {p.class_name}: {p.area} px
                </li>
              ))}
            </ul>
            <pre className="report json" data-testid="try-json">
              {JSON.stringify(predict.data, null, 2)}
            </pre>
          </div>
        </div>
      )}
    </section>
  );
}

export function DeploymentPage() {
  const { projectId, deploymentId } = useParams();
  const pid = Number(projectId);
  const id = Number(deploymentId);
  const navigate = useNavigate();
  const project = useProject(pid);
  const deployment = useDeployment(id);
  const undeploy = useUndeploy(pid);
  const [key, setKey] = useState<string | null>(null);
  const d = deployment.data;
  useTitle(d ? `${d.name} · Deployments` : "Deployment");
  const isOwner = project.data?.role === "owner";
  if (deployment.error) {
    return (
      <section className="page">
        <p className="error" role="alert">
          {deployment.error.message}
        </p>
      </section>
    );
  }
  if (!d) return <p className="page-status">Loading…</p>;
  const url = absoluteUrl(window.location.origin, d.predict_url);
  return (
    <section className="page deployment" data-status={d.status}>
      <p className="small">
        <Link to={`/projects/${pid}/deployments`}>← Deployments</Link>
      </p>
      <h1>
        {d.name} <DeploymentStatus status={d.status} />
      </h1>
      <dl className="facts card">
        <div>
          <dt>artifact</dt>
          <dd>#{d.artifact}</dd>
        </div>
        <div>
          <dt>runtime</dt>
          <dd>
            {d.runtime} · {d.device} · ×{d.replicas}
          </dd>
        </div>
        <div>
          <dt>worker</dt>
          <dd>
            {d.worker || "—"} · hot on {d.workers_loaded} worker{d.workers_loaded === 1 ? "" : "s"}
          </dd>
        </div>
        <div>
          <dt>load + warm-up</dt>
          <dd>{d.load_ms != null ? `${Math.round(d.load_ms)} ms` : "—"}</dd>
        </div>
        <div>
          <dt>endpoint</dt>
          <dd>
            <code>POST {url}</code>
          </dd>
        </div>
      </dl>
      {d.status === "failed" && (
        <pre className="report error" role="alert">
          {d.reason}
        </pre>
      )}
      {isOwner && (
        <p>
          <button
            type="button"
            className="danger"
            disabled={undeploy.isPending}
            onClick={() => undeploy.mutate(d.id, { onSuccess: () => navigate(`/projects/${pid}/deployments`) })}
          >
            Undeploy
          </button>
        </p>
      )}
      <div className="deployment-grid">
        {isOwner && <Keys deploymentId={d.id} onCreated={(k) => setKey(k.key)} />}
        <section className="card" aria-label="Snippets">
          <h2>Call it from code</h2>
          {!key && <p className="muted small">Create a key to have it filled in; until then the snippets read it from $TESSERA_API_KEY.</p>}
          <CopyBlock label="curl" text={curlSnippet(url, key)} testId="snippet-curl" />
          <CopyBlock label="Python" text={pythonSnippet(url, key)} testId="snippet-python" />
        </section>
        <TryIt deploymentId={d.id} projectId={pid} ready={d.status === "ready"} />
      </div>
    </section>
  );
}
