import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { useDeleteProject, useRenameProject } from "../../api/assets";
import { keys, useJob } from "../../api/hooks";
import type { Project } from "../../api/types";
import "./manage.css";

/** Owner's settings: rename the project; delete it (typed confirmation, a job with progress). */
export function ProjectSettings({ project }: { project: Project }) {
  const [name, setName] = useState(project.name);
  const rename = useRenameProject(project.id);
  const remove = useDeleteProject(project.id);
  const [confirm, setConfirm] = useState("");
  const job = useJob(remove.data?.id ?? null);
  const qc = useQueryClient();
  const navigate = useNavigate();
  const finished = job.data?.status === "succeeded";
  useEffect(() => {
    if (!finished) return;
    void qc.invalidateQueries({ queryKey: keys.projects });
    const t = window.setTimeout(() => navigate("/", { replace: true }), 1200);
    return () => window.clearTimeout(t);
  }, [finished, navigate, qc]);

  const submitRename = (e: FormEvent) => {
    e.preventDefault();
    rename.mutate(name.trim());
  };
  const submitDelete = (e: FormEvent) => {
    e.preventDefault();
    remove.mutate(confirm);
  };
  const progress = job.data ? Math.round(job.data.progress * 100) : 0;
  return (
    <div className="settings">
      <form className="card inline-form" onSubmit={submitRename} aria-label="Rename project">
        <h2>Name</h2>
        <label>
          Project name
          <input name="project-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
        </label>
        <button type="submit" className="primary" disabled={rename.isPending || !name.trim() || name.trim() === project.name}>
          Rename
        </button>
        {rename.isSuccess && !rename.isPending && <span role="status" className="muted">Renamed.</span>}
        {rename.error && (
          <p className="error" role="alert">
            {rename.error.message}
          </p>
        )}
      </form>
      <form className="card danger-zone" onSubmit={submitDelete} aria-label="Delete project">
        <h2>Delete this project</h2>
        <p className="muted">
          Deletes every asset, mask, revision, training run, model and deployment of <strong>{project.name}</strong>,
          with their files. Members lose access at once. This cannot be undone.
        </p>
        {!remove.data ? (
          <div className="inline-form">
            <label>
              Type the project's name to confirm
              <input name="confirm-name" value={confirm} onChange={(e) => setConfirm(e.target.value)} autoComplete="off" />
            </label>
            <button type="submit" className="danger" disabled={remove.isPending || confirm !== project.name}>
              Delete project
            </button>
          </div>
        ) : (
          <div className="job" role="status" aria-live="polite">
            <progress max={100} value={progress} aria-label="Deletion progress" />
            <span>
              {finished
                ? "Project deleted. Back to the projects…"
                : job.data?.status === "failed"
                  ? `The deletion stopped: ${job.data.message}`
                  : `${job.data?.message || "Deleting…"} (${progress}%)`}
            </span>
          </div>
        )}
        {remove.error && (
          <p className="error" role="alert">
            {remove.error.message}
          </p>
        )}
      </form>
    </div>
  );
}
