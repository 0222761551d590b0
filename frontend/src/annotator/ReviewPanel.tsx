import { useState } from "react";
import { STATUS_LABEL, useReview } from "../api/assets";
import type { Asset, AssetStatus } from "../api/types";

interface Props {
  asset: Asset;
  /** The status the editor holds now (saves make an asset labelled). */
  status: AssetStatus;
  /** Save pending edits first; false when that save failed. */
  flush: () => Promise<boolean>;
  onDecided: (asset: Asset) => void;
}

/** The asset's review status and last comment, with Accept / Reject (owners and annotators: the
 * annotator is not open to viewers). A rejection needs a comment. */
export function ReviewPanel({ asset, status, flush, onDecided }: Props) {
  const review = useReview(asset.id);
  const [last, setLast] = useState({ comment: asset.review_comment ?? "", by: asset.reviewed_by ?? null });
  const [comment, setComment] = useState("");
  const [error, setError] = useState<string | null>(null);
  const reviewable = status === "labeled" || status === "reviewed" || status === "rejected";

  const decide = async (decision: "reviewed" | "rejected") => {
    setError(null);
    if (decision === "rejected" && !comment.trim()) {
      setError("A rejection needs a comment.");
      return;
    }
    if (!(await flush())) {
      setError("The current edits could not be saved; retry the save first.");
      return;
    }
    review.mutate(
      { decision, comment },
      {
        onSuccess: (a) => {
          setLast({ comment: a.review_comment ?? "", by: a.reviewed_by ?? null });
          setComment("");
          onDecided(a);
        },
        onError: (e) => setError(e.message),
      },
    );
  };

  return (
    <section aria-labelledby="review-title" className="review-box">
      <h2 id="review-title">Review</h2>
      <p>
        <strong className={`status-${status}`} data-testid="annotator-review-status">
          {STATUS_LABEL[status]}
        </strong>
        {last.by && (status === "reviewed" || status === "rejected") && <span className="muted small"> · by {last.by}</span>}
      </p>
      {last.comment && (
        <p className={status === "rejected" ? "rejection" : "muted"} data-testid="annotator-review-comment">
          {status === "rejected" ? "Rejected: " : "Last comment: "}
          <q>{last.comment}</q>
        </p>
      )}
      {reviewable ? (
        <>
          <label>
            Review comment
            <textarea value={comment} onChange={(e) => setComment(e.target.value)} maxLength={2000} rows={2} />
          </label>
          <div className="row">
            <button type="button" className="primary" disabled={review.isPending} onClick={() => void decide("reviewed")}>
              Accept
            </button>
            <button type="button" className="danger" disabled={review.isPending} onClick={() => void decide("rejected")}>
              Reject
            </button>
          </div>
        </>
      ) : (
        <p className="muted small">Label the asset (save its masks) to review it.</p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
