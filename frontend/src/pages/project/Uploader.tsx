import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState, type DragEvent } from "react";
import { api, ApiError, uploadForm } from "../../api/client";
import type { UploadResult } from "../../api/types";

/** GET /videos/{id}/ */
interface VideoInfo {
  id: number;
  name: string;
  status: "pending" | "processing" | "done" | "failed";
  progress: number;
  frame_count: number;
  error: string;
}

type ItemState = "queued" | "uploading" | "done" | "duplicate" | "error";

interface Item {
  key: number;
  file: File;
  progress: number;
  state: ItemState;
  message: string;
  /** Set for an accepted video: its frames are extracted in the background (polled). */
  videoId?: number;
}

const CONCURRENCY = 3;
const VIDEO_POLL_MS = 1000;

/** Live frame-extraction progress of one uploaded video (polls GET /videos/{id}/ until it ends). */
function VideoProgress({ projectId, videoId, name }: { projectId: number; videoId: number; name: string }) {
  const qc = useQueryClient();
  const video = useQuery({
    queryKey: ["video", videoId],
    queryFn: () => api<VideoInfo>(`/videos/${videoId}/`),
    refetchInterval: (q) => (q.state.data && ["done", "failed"].includes(q.state.data.status) ? false : VIDEO_POLL_MS),
  });
  const v = video.data;
  const frames = v?.frame_count ?? 0;
  // New frames are new assets: refresh the grid as they arrive (every 5 frames) and at the end.
  const shown = useRef(0);
  useEffect(() => {
    if (!v) return;
    if (v.status === "done" || v.status === "failed" || frames - shown.current >= 5) {
      shown.current = frames;
      qc.invalidateQueries({ queryKey: ["assets", projectId] });
      qc.invalidateQueries({ queryKey: ["project", projectId] });
    }
  }, [v?.status, frames, projectId, qc]); // eslint-disable-line react-hooks/exhaustive-deps
  const text = !v
    ? "Video: waiting for frame extraction…"
    : v.status === "failed"
      ? `Video failed: ${v.error || "could not be decoded"}`
      : v.status === "done"
        ? `Video: ${frames} frame${frames === 1 ? "" : "s"} extracted`
        : v.status === "pending"
          ? "Video: queued for frame extraction"
          : `Video: extracting frames ${Math.round(v.progress * 100)}% (${frames} so far)`;
  return (
    <span className="video-progress" data-video-status={v?.status ?? "unknown"} role={v?.status === "failed" ? "alert" : "status"}>
      {v && v.status !== "done" && v.status !== "failed" && (
        <progress max={1} value={v.progress} aria-label={`Frame extraction of ${name}`} />
      )}{" "}
      {text}
    </span>
  );
}

/** Outcome of one single-file upload response, from its status and body. */
export function uploadOutcome(status: number, body: unknown): { state: ItemState; message: string } {
  const r = body as Partial<UploadResult> & { error?: { message?: string } };
  if (r?.errors && r.errors.length > 0) return { state: "error", message: r.errors.map((e) => e.message).join("; ") };
  if (status >= 400) return { state: "error", message: r?.error?.message ?? `Upload failed (${status})` };
  if (r?.duplicates && r.duplicates.length > 0 && !(r.created?.length || r.videos?.length)) {
    return { state: "duplicate", message: "Already in this project" };
  }
  if (r?.videos && r.videos.length > 0) return { state: "done", message: "Video: extracting frames" };
  return { state: "done", message: "" };
}

/** Drag-and-drop upload of many files; one request per file for per-file progress and errors. */
export function Uploader({ projectId }: { projectId: number }) {
  const qc = useQueryClient();
  const [items, setItems] = useState<Item[]>([]);
  const [over, setOver] = useState(false);
  const queue = useRef<Item[]>([]);
  const active = useRef(0);
  const nextKey = useRef(1);
  const input = useRef<HTMLInputElement>(null);

  const patch = useCallback((key: number, p: Partial<Item>) => {
    setItems((list) => list.map((it) => (it.key === key ? { ...it, ...p } : it)));
  }, []);

  const pump = useCallback(() => {
    while (active.current < CONCURRENCY && queue.current.length > 0) {
      const item = queue.current.shift()!;
      active.current++;
      patch(item.key, { state: "uploading" });
      const form = new FormData();
      form.append("files", item.file, item.file.name);
      uploadForm<UploadResult>(`/projects/${projectId}/assets/`, form, (f) => patch(item.key, { progress: f }))
        .then(({ status, body }) =>
          patch(item.key, { progress: 1, ...uploadOutcome(status, body), videoId: body?.videos?.[0]?.id }),
        )
        .catch((e: unknown) =>
          patch(item.key, { state: "error", message: e instanceof ApiError ? e.message : String(e) }),
        )
        .finally(() => {
          active.current--;
          if (queue.current.length === 0 && active.current === 0) {
            qc.invalidateQueries({ queryKey: ["assets", projectId] });
            qc.invalidateQueries({ queryKey: ["project", projectId] });
          }
          pump();
        });
    }
  }, [patch, projectId, qc]);

  const add = (files: FileList | File[]) => {
    const fresh: Item[] = Array.from(files).map((file) => ({
      key: nextKey.current++,
      file,
      progress: 0,
      state: "queued" as const,
      message: "",
    }));
    if (fresh.length === 0) return;
    setItems((list) => [...fresh, ...list.filter((it) => it.state === "queued" || it.state === "uploading" || it.state === "error")].slice(0, 500));
    queue.current.push(...fresh);
    pump();
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    add(e.dataTransfer.files);
  };

  const done = items.filter((i) => i.state === "done" || i.state === "duplicate").length;
  const failed = items.filter((i) => i.state === "error").length;
  return (
    <div className="uploader">
      <div
        className={`dropzone${over ? " over" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        <p>Drop images or videos here, or</p>
        <button type="button" onClick={() => input.current?.click()}>
          Choose files…
        </button>
        <input
          ref={input}
          type="file"
          multiple
          accept="image/*,video/*"
          aria-label="Upload files"
          data-testid="upload-input"
          hidden
          onChange={(e) => {
            if (e.target.files) add(e.target.files);
            e.target.value = "";
          }}
        />
      </div>
      {items.length > 0 && (
        <div className="upload-list">
          <p aria-live="polite">
            {done} of {items.length} uploaded{failed ? `, ${failed} failed` : ""}
          </p>
          <ul>
            {items.map((it) => (
              <li key={it.key} className={`upload-item ${it.state}`} data-file={it.file.name}>
                <span className="file-name">{it.file.name}</span>
                <progress max={1} value={it.progress} aria-label={`Upload progress of ${it.file.name}`} />
                {it.videoId !== undefined && it.state === "done" ? (
                  <VideoProgress projectId={projectId} videoId={it.videoId} name={it.file.name} />
                ) : (
                  <span className="upload-state" role={it.state === "error" ? "alert" : undefined}>
                    {it.state === "error" ? `Error: ${it.message}` : it.message || it.state}
                  </span>
                )}
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}
