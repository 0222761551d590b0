import { useEffect } from "react";
import { Link } from "react-router";
import { useQueryClient } from "@tanstack/react-query";
import { summaryKey, useAssetSummary } from "../../api/assets";
import { SplitCounts } from "./AssetGrid";
import "./manage.css";

/**
 * Images per split next to Run Training, with the reason a run would be refused (an empty or
 * tiny val split) and a link to fix it. `attempt` changes after each start (re-read the counts).
 */
export function SplitReadiness({ projectId, attempt }: { projectId: number; attempt?: unknown }) {
  const summary = useAssetSummary(projectId);
  const qc = useQueryClient();
  useEffect(() => {
    if (attempt) void qc.invalidateQueries({ queryKey: summaryKey(projectId) });
  }, [attempt, projectId, qc]);
  if (!summary.data) return null;
  return (
    <div className="split-readiness" data-testid="split-readiness">
      <SplitCounts summary={summary.data} />
      {!summary.data.validation.ok && (
        <Link to={`/projects/${projectId}`} className="small">
          Fix the splits on the Assets page
        </Link>
      )}
    </div>
  );
}
