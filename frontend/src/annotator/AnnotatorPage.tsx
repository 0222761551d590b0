import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router";
import { useClasses, useProject } from "../api/hooks";
import { ErrorBoundary } from "../components/ErrorBoundary";
import { useTitle } from "../components/useTitle";
import { Annotator } from "./Annotator";
import { journal, loadAssetBundle } from "./assetBundle";
import { MaskDocument } from "./maskDocument";

/** Loads one asset as a unit (metadata, image, masks, journal) and the project's classes, then
 * shows the editor for exactly that asset. */
export function AnnotatorPage() {
  const { projectId, assetId } = useParams();
  const pid = Number(projectId);
  const aid = Number(assetId);
  const classes = useClasses(pid);
  const project = useProject(pid);
  const bundle = useQuery({
    queryKey: ["annotate", aid],
    queryFn: ({ signal }) => loadAssetBundle(aid, signal),
    staleTime: 0,
    gcTime: 0,
    refetchOnWindowFocus: false,
    refetchOnReconnect: false,
  });
  // Per asset: whether the journaled edits were taken back ("restore") or dropped.
  const [choice, setChoice] = useState<{ aid: number; restore: boolean } | null>(null);
  const data = bundle.data?.asset.id === aid ? bundle.data : undefined;
  useTitle(data ? `Annotate ${data.asset.name}` : "Annotate");

  const error = classes.error ?? bundle.error;
  if (error) {
    return (
      <main className="page">
        <p className="error" role="alert">
          {error.message}
        </p>
        <Link to={`/projects/${pid}`}>Back to the project</Link>
      </main>
    );
  }
  if (project.data?.role === "viewer" && data) {
    // Viewers may look but not label (the API refuses their mask writes): no editor.
    return (
      <main className="page" data-testid="read-only-asset">
        <h1>{data.asset.name}</h1>
        <p className="muted">You are a viewer in this project: annotators and owners label images.</p>
        <img src={data.asset.file_url} alt={data.asset.name} style={{ maxWidth: "100%", maxHeight: "75vh" }} />
        <p>
          <Link to={`/projects/${pid}`}>Back to the project</Link>
        </p>
      </main>
    );
  }
  if (!data || !classes.data || !project.data) {
    return (
      <main className="page" aria-busy="true">
        <p role="status">Loading asset…</p>
      </main>
    );
  }
  const decided = choice?.aid === aid ? choice : null;
  const restore = !!(decided?.restore && data.journal);
  const recovered =
    data.journal && !decided
      ? {
          savedAt: data.journal.savedAt,
          restore: () => setChoice({ aid, restore: true }),
          discard: () => {
            void journal.remove(aid);
            setChoice({ aid, restore: false });
          },
        }
      : null;
  return (
    <ErrorBoundary
      key={aid}
      backTo={`/projects/${pid}`}
      backLabel="Back to the project"
      note="Edits not yet saved are kept on this device and offered back when you open this asset again."
    >
      <Annotator
        key={`${aid}:${restore ? "journal" : `r${data.revision ?? 0}`}`}
        projectId={pid}
        asset={data.asset}
        image={data.image}
        classes={classes.data}
        initialRevision={restore ? data.journal!.baseRevision : data.revision}
        restored={restore}
        recovered={recovered}
        initialDoc={() =>
          MaskDocument.fromApi(data.width, data.height, restore ? data.journal!.masks : data.masks)
        }
      />
    </ErrorBoundary>
  );
}
