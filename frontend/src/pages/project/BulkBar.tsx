import { useState } from "react";
import { SPLITS, STATUSES, STATUS_LABEL, useBulkAction, type AssetSelection, type BulkAction } from "../../api/assets";
import type { AssetSplit, AssetStatus } from "../../api/types";

/** Actions on the selected assets: move to a split, set the status, delete (owners, confirmed). */
export function BulkBar({
  projectId,
  count,
  selection,
  canDelete,
  onDone,
}: {
  projectId: number;
  count: number;
  selection: AssetSelection;
  canDelete: boolean;
  /** Called with what was done (the bar goes away with the selection). */
  onDone: (message: string) => void;
}) {
  const bulk = useBulkAction(projectId);
  const [split, setSplit] = useState<AssetSplit>("val");
  const [status, setStatus] = useState<AssetStatus>("labeled");
  const [confirming, setConfirming] = useState(false);
  const run = (action: BulkAction, done: (n: number) => string) =>
    bulk.mutate(
      { selection, action },
      {
        onSuccess: (r) => {
          setConfirming(false);
          onDone(done(r.count));
        },
      },
    );
  const plural = (n: number) => `${n} asset${n === 1 ? "" : "s"}`;
  return (
    <div className="bulk-bar card" role="group" aria-label="Bulk actions">
      <strong aria-live="polite">{count} selected</strong>
      <label className="inline">
        Move to
        <select name="bulk-split" value={split} onChange={(e) => setSplit(e.target.value as AssetSplit)}>
          {SPLITS.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </label>
      <button type="button" disabled={bulk.isPending} onClick={() => run({ action: "set_split", split }, (n) => `Moved ${plural(n)} to ${split}.`)}>
        Move
      </button>
      <label className="inline">
        Status
        <select name="bulk-status" value={status} onChange={(e) => setStatus(e.target.value as AssetStatus)}>
          {STATUSES.filter((s) => s !== "rejected").map((s) => (
            <option key={s} value={s}>
              {STATUS_LABEL[s]}
            </option>
          ))}
        </select>
      </label>
      <button
        type="button"
        disabled={bulk.isPending}
        onClick={() => run({ action: "set_status", status }, (n) => `Set ${plural(n)} to ${STATUS_LABEL[status].toLowerCase()}.`)}
      >
        Set status
      </button>
      {canDelete &&
        (confirming ? (
          <span className="row confirm-delete" role="alertdialog" aria-label="Confirm deletion">
            <span className="error">Delete {plural(count)} with their masks and files? This cannot be undone.</span>
            <button type="button" className="danger" disabled={bulk.isPending} onClick={() => run({ action: "delete" }, (n) => `Deleted ${plural(n)}.`)}>
              Delete {plural(count)}
            </button>
            <button type="button" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </span>
        ) : (
          <button type="button" className="danger" onClick={() => setConfirming(true)}>
            Delete…
          </button>
        ))}
      {bulk.error && (
        <span className="error" role="alert">
          {bulk.error.message}
        </span>
      )}
    </div>
  );
}
