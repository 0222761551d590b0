/**
 * Review one labelled asset: the image with its masks drawn over it, Accept or Reject (with a
 * comment for the labeler), then on to the next asset waiting for review that nobody else has open.
 */
import { useQuery } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { STATUS_LABEL, useNextAsset, useReview } from "../../api/assets";
import { usePresence } from "../../annotator/presence";
import { api } from "../../api/client";
import { useAsset, useClasses, useProject } from "../../api/hooks";
import type { LabelClass, MaskEntry } from "../../api/types";
import { useTitle } from "../../components/useTitle";
import { forEachRun, stringToCounts } from "../../lib/rle";
import "./manage.css";

function hexToRgb(hex: string): [number, number, number] {
  const n = parseInt(hex.replace("#", ""), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** Paint the masks in their class colours (semi-transparent) onto a canvas the image's size. */
function drawMasks(canvas: HTMLCanvasElement, masks: MaskEntry[], classes: LabelClass[], w: number, h: number) {
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const pixels = ctx.createImageData(w, h);
  const colour = new Map(classes.map((c) => [c.id, hexToRgb(c.color)]));
  for (const m of masks) {
    const rgb = colour.get(m.class_id);
    if (!rgb) continue;
    forEachRun(stringToCounts(m.rle.counts), h, w, (x, y0, y1) => {
      for (let y = y0; y < y1; y++) {
        const i = (y * w + x) * 4;
        pixels.data.set([rgb[0], rgb[1], rgb[2], 140], i);
      }
    });
  }
  ctx.putImageData(pixels, 0, 0);
}

export function ReviewPage() {
  const { projectId, assetId } = useParams();
  const pid = Number(projectId);
  const aid = Number(assetId);
  const project = useProject(pid);
  const asset = useAsset(aid);
  const classes = useClasses(pid);
  const masks = useQuery({
    queryKey: ["masks", aid],
    queryFn: () => api<{ masks: MaskEntry[] }>(`/assets/${aid}/masks/`),
    staleTime: 0,
  });
  const canReview = project.data ? project.data.role !== "viewer" : false;
  // The presence socket marks the asset open (owners, annotators), so "Next" skips it for others.
  usePresence(aid);
  const review = useReview(aid);
  const next = useNextAsset(pid);
  const navigate = useNavigate();
  const [comment, setComment] = useState("");
  const [showMasks, setShowMasks] = useState(true);
  const [done, setDone] = useState<string | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  useTitle(asset.data ? `Review ${asset.data.name}` : "Review");

  useEffect(() => {
    setComment("");
    setDone(null);
    review.reset();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [aid]);
  useEffect(() => {
    if (canvas.current && asset.data && masks.data && classes.data) {
      drawMasks(canvas.current, masks.data.masks, classes.data, asset.data.width, asset.data.height);
    }
  }, [asset.data, masks.data, classes.data]);

  const goNext = () =>
    next.mutate(
      { purpose: "review", after: aid },
      {
        onSuccess: ({ asset: a }) => {
          if (a) navigate(`/projects/${pid}/review/${a.id}`);
          else setDone("Nothing else is waiting for review.");
        },
      },
    );
  const decide = (decision: "reviewed" | "rejected") =>
    review.mutate({ decision, comment }, { onSuccess: () => goNext() });

  const error = asset.error ?? masks.error ?? classes.error;
  if (error) {
    return (
      <section className="page">
        <p className="error" role="alert">
          {error.message}
        </p>
        <Link to={`/projects/${pid}`}>Back to the assets</Link>
      </section>
    );
  }
  const a = asset.data;
  return (
    <section className="page">
      <h1>
        Review <span className="muted small">{a?.name ?? "…"}</span>
      </h1>
      <div className="review">
        <div className="review-stage">
          {a && <img src={a.file_url} alt={a.name} width={a.width} height={a.height} />}
          <canvas ref={canvas} data-testid="review-masks" hidden={!showMasks} />
        </div>
        <aside className="review-panel card" aria-label="Review">
          {a && (
            <p>
              Status: <strong className={`status-${a.status}`} data-testid="review-status">{STATUS_LABEL[a.status]}</strong>
              {a.reviewed_by ? <span className="muted small"> · by {a.reviewed_by}</span> : null}
            </p>
          )}
          {a?.review_comment && (
            <p className="muted">
              Last comment: <q>{a.review_comment}</q>
            </p>
          )}
          <p className="muted small">{masks.data ? `${masks.data.masks.length} masks` : "Loading masks…"}</p>
          <label className="check">
            <input type="checkbox" checked={showMasks} onChange={(e) => setShowMasks(e.target.checked)} /> Show masks
          </label>
          {canReview ? (
            <>
              <label>
                Comment (needed to reject)
                <textarea name="comment" value={comment} onChange={(e) => setComment(e.target.value)} maxLength={2000} />
              </label>
              <div className="row">
                <button type="button" className="primary" disabled={review.isPending} onClick={() => decide("reviewed")}>
                  Accept
                </button>
                <button type="button" className="danger" disabled={review.isPending} onClick={() => decide("rejected")}>
                  Reject
                </button>
                <button type="button" disabled={next.isPending} onClick={goNext}>
                  Skip
                </button>
              </div>
            </>
          ) : (
            <p className="muted">Viewers can look; annotators and owners review.</p>
          )}
          {(review.error ?? next.error) && (
            <p className="error" role="alert">
              {(review.error ?? next.error)?.message}
            </p>
          )}
          {done && (
            <p role="status">
              {done} <Link to={`/projects/${pid}`}>Back to the assets</Link>
            </p>
          )}
          <p className="row">
            <Link to={`/projects/${pid}/annotate/${aid}`}>Open in the annotator</Link>
            <Link to={`/projects/${pid}`}>All assets</Link>
          </p>
        </aside>
      </div>
    </section>
  );
}
