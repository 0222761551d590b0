/** Splits, bulk actions, review and "next to label / review" (projects app endpoints). */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "./client";
import { keys } from "./hooks";
import type { Asset, AssetSplit, AssetStatus, Job } from "./types";

export const SPLITS: AssetSplit[] = ["train", "val", "test"];
export const STATUSES: AssetStatus[] = ["unlabeled", "in_progress", "labeled", "reviewed", "rejected"];
export const STATUS_LABEL: Record<AssetStatus, string> = {
  unlabeled: "Unlabeled",
  in_progress: "In progress",
  labeled: "Labeled",
  reviewed: "Reviewed",
  rejected: "Rejected",
};

export interface ValidationCheck {
  ok: boolean;
  labeled: number;
  minimum: number;
  message: string;
}

export interface AssetSummary {
  splits: Record<AssetSplit, { total: number; labeled: number }>;
  statuses: Record<AssetStatus, number>;
  locked: number;
  total: number;
  validation: ValidationCheck;
}

export const summaryKey = (projectId: number) => ["asset-summary", projectId] as const;

export function useAssetSummary(projectId: number) {
  return useQuery({
    queryKey: summaryKey(projectId),
    queryFn: () => api<AssetSummary>(`/projects/${projectId}/assets/summary/`),
  });
}

/** Which assets a bulk action applies to: listed ids, or every asset matching a filter. */
export type AssetSelection =
  | { ids: number[] }
  | { filter: { status?: AssetStatus; split?: AssetSplit } };

export type BulkAction =
  | { action: "delete" }
  | { action: "set_split"; split: AssetSplit }
  | { action: "set_status"; status: AssetStatus };

/** Invalidate everything that shows assets of a project after a change. */
function useAssetsChanged(projectId: number) {
  const qc = useQueryClient();
  return () => {
    void qc.invalidateQueries({ queryKey: ["assets", projectId] });
    void qc.invalidateQueries({ queryKey: summaryKey(projectId) });
    void qc.invalidateQueries({ queryKey: keys.projects });
  };
}

export function useBulkAction(projectId: number) {
  const changed = useAssetsChanged(projectId);
  return useMutation({
    mutationFn: (v: { selection: AssetSelection; action: BulkAction }) =>
      api<{ action: string; count: number }>(`/projects/${projectId}/assets/bulk/`, {
        method: "POST",
        body: { ...v.selection, ...v.action },
      }),
    onSuccess: changed,
  });
}

export interface AutoSplitInput {
  train: number;
  val: number;
  test: number;
  seed: number;
  include_locked: boolean;
}

export interface AutoSplitResult {
  moved: number;
  kept_locked: number;
  assigned: Record<AssetSplit, number>;
  summary: AssetSummary;
}

export function useAutoSplit(projectId: number) {
  const changed = useAssetsChanged(projectId);
  return useMutation({
    mutationFn: (body: AutoSplitInput) =>
      api<AutoSplitResult>(`/projects/${projectId}/splits/auto/`, { method: "POST", body }),
    onSuccess: changed,
  });
}

export function useNextAsset(projectId: number) {
  return useMutation({
    mutationFn: (v: { purpose: "label" | "review"; after?: number }) =>
      api<{ asset: Asset | null }>(`/projects/${projectId}/assets/next/`, { method: "POST", body: v }),
  });
}

export function useReview(assetId: number) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (v: { decision: "reviewed" | "rejected"; comment?: string }) =>
      api<Asset>(`/assets/${assetId}/review/`, { method: "POST", body: v }),
    onSuccess: (asset) => {
      qc.setQueryData(keys.asset(assetId), asset);
      void qc.invalidateQueries({ queryKey: ["assets", asset.project_id] });
      void qc.invalidateQueries({ queryKey: summaryKey(asset.project_id) });
    },
  });
}

export function useRenameProject(projectId: number) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (name: string) => api(`/projects/${projectId}/`, { method: "PATCH", body: { name } }),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: keys.project(projectId) });
      void qc.invalidateQueries({ queryKey: keys.projects });
    },
  });
}

export function useDeleteProject(projectId: number) {
  return useMutation({
    mutationFn: (confirm: string) => api<Job>(`/projects/${projectId}/`, { method: "DELETE", body: { confirm } }),
  });
}
