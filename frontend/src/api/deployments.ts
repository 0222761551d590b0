/**
 * Deployments API: deploy an artifact, its status, API keys (the secret is returned once,
 * at creation) and predictions (the try-it panel calls predict with the browser session).
 * Shapes follow deployments/apis.py.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "./client";
import type { Page } from "./types";
import type { CocoRle } from "../lib/rle";

export type DeploymentStatus = "deploying" | "ready" | "failed";
export const RUNTIMES = ["onnxruntime", "onnxruntime-int8", "pytorch"] as const;
export const DEVICES = ["cpu", "cuda"] as const;

export interface Deployment {
  id: number;
  project: number;
  artifact: number;
  name: string;
  runtime: (typeof RUNTIMES)[number];
  device: (typeof DEVICES)[number];
  replicas: number;
  /** Running inference workers holding the model hot. */
  workers_loaded: number;
  status: DeploymentStatus;
  reason: string;
  worker: string;
  load_ms: number | null;
  created_at: string;
  updated_at: string;
  ready_at: string | null;
  predict_url: string;
}

export interface ApiKey {
  id: number;
  deployment: number;
  name: string;
  prefix: string;
  rate: string;
  created_at: string;
  last_used_at: string | null;
  revoked: boolean;
  revoked_at: string | null;
}

/** The response of creating a key: the only time `key` (the secret) is shown. */
export interface ApiKeyCreated extends ApiKey {
  key: string;
}

export interface Prediction {
  class_id: number | null;
  label: number;
  class_name: string;
  rle: CocoRle;
  area: number;
  polygons?: number[][];
}

export interface PredictResult {
  width: number;
  height: number;
  predictions: Prediction[];
  png?: string;
  timing_ms: { total: number; inference: number };
}

export const deploymentKeys = {
  list: (projectId: number) => ["deployments", projectId] as const,
  one: (id: number) => ["deployment", id] as const,
  keys: (id: number) => ["deployment-keys", id] as const,
};

/** The project's deployments; polled while one is still loading. */
export function useDeployments(projectId: number) {
  return useQuery({
    queryKey: deploymentKeys.list(projectId),
    queryFn: () => api<Page<Deployment>>("/deployments/", { query: { project: projectId, page_size: 50 } }),
    refetchInterval: (q) => (q.state.data?.results.some((d) => d.status === "deploying") ? 1500 : 10_000),
  });
}

export function useDeployment(id: number) {
  return useQuery({
    queryKey: deploymentKeys.one(id),
    queryFn: () => api<Deployment>(`/deployments/${id}/`),
    // Deploying: every second until ready or failed; then every 5 s (workers come and go).
    refetchInterval: (q) => (q.state.data?.status === "deploying" ? 1000 : 5000),
  });
}

export function useDeploy(projectId: number) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (v: { artifact: number; name?: string; runtime: string; device: string; replicas: number }) =>
      api<Deployment>("/deployments/", { method: "POST", body: v }),
    onSuccess: (d) => {
      qc.setQueryData(deploymentKeys.one(d.id), d);
      void qc.invalidateQueries({ queryKey: deploymentKeys.list(projectId) });
    },
  });
}

export function useUndeploy(projectId: number) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (id: number) => api<void>(`/deployments/${id}/`, { method: "DELETE" }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: deploymentKeys.list(projectId) }),
  });
}

export function useApiKeys(deploymentId: number, enabled = true) {
  return useQuery({
    queryKey: deploymentKeys.keys(deploymentId),
    queryFn: () => api<ApiKey[]>(`/deployments/${deploymentId}/keys/`),
    enabled,
  });
}

export function useCreateKey(deploymentId: number) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (v: { name: string; rate: string }) =>
      api<ApiKeyCreated>(`/deployments/${deploymentId}/keys/`, { method: "POST", body: v }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: deploymentKeys.keys(deploymentId) }),
  });
}

export function useRevokeKey(deploymentId: number) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (keyId: number) => api<void>(`/deployments/${deploymentId}/keys/${keyId}/`, { method: "DELETE" }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: deploymentKeys.keys(deploymentId) }),
  });
}

/** Segment one image with the deployment (as the logged-in member). */
export function usePredict(deploymentId: number) {
  return useMutation({
    mutationFn: (file: File) => {
      const form = new FormData();
      form.append("image", file);
      return api<PredictResult>(`/deployments/${deploymentId}/predict/`, { method: "POST", body: form });
    },
  });
}
