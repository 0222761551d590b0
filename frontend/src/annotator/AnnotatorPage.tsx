import { useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { api } from "../api/client";
import { useAsset, useClasses, useProject } from "../api/hooks";
import type { MaskEntry } from "../api/types";
import { useTitle } from "../components/useTitle";
import { Annotator } from "./Annotator";
import { MaskDocument } from "./maskDocument";

/** Loads an asset (metadata, image, masks) and the project's classes, then shows the editor. */
export function AnnotatorPage() {
  const { projectId, assetId } = useParams();
  const pid = Number(projectId);
  const aid = Number(assetId);
  const asset = useAsset(aid);
  const classes = useClasses(pid);
  const project = useProject(pid);
  useTitle(asset.data ? `Annotate ${asset.data.name}` : "Annotate");
  const masks = useQuery({
    queryKey: ["masks", aid],
    queryFn: async () => {
      const data = await api<{ masks: MaskEntry[]; revision?: number | null } | MaskEntry[]>(
        `/assets/${aid}/masks/`,
      );
      return Array.isArray(data) ? { masks: data, revision: null } : { masks: data.masks, revision: data.revision ?? null };
    },
    staleTime: 0,
    gcTime: 0,
  });
  const [image, setImage] = useState<HTMLImageElement | null>(null);
  const [imageError, setImageError] = useState<string | null>(null);
  const fileUrl = asset.data?.file_url;
  useEffect(() => {
    if (!fileUrl) return;
    let alive = true;
    const img = new Image();
    img.decoding = "async";
    img.onload = () => alive && setImage(img);
    img.onerror = () => alive && setImageError("The image could not be loaded.");
    img.src = fileUrl;
    return () => {
      alive = false;
    };
  }, [fileUrl]);

  const error = asset.error ?? classes.error ?? masks.error;
  if (error || imageError) {
    return (
      <main className="page">
        <p className="error" role="alert">
          {error?.message ?? imageError}
        </p>
        <Link to={`/projects/${pid}`}>Back to the project</Link>
      </main>
    );
  }
  if (project.data?.role === "viewer" && asset.data) {
    // Viewers may look but not label (the API refuses their mask writes): no editor.
    return (
      <main className="page" data-testid="read-only-asset">
        <h1>{asset.data.name}</h1>
        <p className="muted">You are a viewer in this project: annotators and owners label images.</p>
        <img src={asset.data.file_url} alt={asset.data.name} style={{ maxWidth: "100%", maxHeight: "75vh" }} />
        <p>
          <Link to={`/projects/${pid}`}>Back to the project</Link>
        </p>
      </main>
    );
  }
  if (!asset.data || !classes.data || !masks.data || !image || !project.data) {
    return (
      <main className="page" aria-busy="true">
        <p role="status">Loading asset…</p>
      </main>
    );
  }
  const width = image.naturalWidth || asset.data.width;
  const height = image.naturalHeight || asset.data.height;
  return (
    <Annotator
      key={aid}
      projectId={pid}
      asset={asset.data}
      image={image}
      classes={classes.data}
      initialRevision={masks.data.revision}
      initialDoc={() => MaskDocument.fromApi(width, height, masks.data.masks)}
    />
  );
}
