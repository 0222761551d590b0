import { Link, useParams } from "react-router";
import { useProject } from "../api/hooks";
import { useTitle } from "../components/useTitle";
import { AssetGrid } from "./project/AssetGrid";
import { ClassEditor } from "./project/ClassEditor";
import { EmbeddingStatus } from "./project/EmbeddingStatus";
import { ImportExport } from "./project/ImportExport";
import { ProjectSettings } from "./project/ProjectSettings";
import { Uploader } from "./project/Uploader";

export function ProjectPage() {
  const { projectId, tab } = useParams();
  const id = Number(projectId);
  const project = useProject(id);
  const section =
    tab === "classes"
      ? "Classes"
      : tab === "data"
        ? "Import / export"
        : tab === "settings"
          ? "Settings"
          : "Assets"; // training and deployments have pages of their own (App.tsx)
  useTitle(project.data ? `${section} · ${project.data.name}` : section);
  if (project.error) {
    return (
      <section className="page">
        <p className="error" role="alert">
          {project.error.message}
        </p>
      </section>
    );
  }
  const canEdit = project.data ? project.data.role !== "viewer" : false;
  const isOwner = project.data?.role === "owner";
  return (
    <section className="page">
      <h1>
        {project.data?.name ?? "…"} <span className="muted small">{section}</span>
        {isOwner && section !== "Settings" && (
          <Link to={`/projects/${id}/settings`} className="small header-link">
            Project settings
          </Link>
        )}
      </h1>
      {section === "Assets" && (
        <>
          {canEdit && <Uploader projectId={id} />}
          <EmbeddingStatus projectId={id} canStart={canEdit} />
          <AssetGrid projectId={id} canEdit={canEdit} isOwner={isOwner} />
        </>
      )}
      {section === "Classes" && <ClassEditor projectId={id} editable={isOwner} />}
      {section === "Import / export" && <ImportExport projectId={id} canImport={canEdit} />}
      {section === "Settings" &&
        project.data &&
        (isOwner ? <ProjectSettings project={project.data} /> : <p className="muted">Only owners change the project's settings.</p>)}
    </section>
  );
}
