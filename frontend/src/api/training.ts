/**
 * Training API: model catalogue, workflows, runs (start, status, cancel, metrics) and artifacts.
 * Shapes follow training/apis.py; hooks share query keys so live events can update the cache.
 */
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "./client";
import type { Page } from "./types";
import type { CocoRle } from "../lib/rle";

/** One trainable model as listed by GET /training/models/. */
export interface ModelSpec {
  family: string;
  variant: string;
  description: string;
  default_resolution: [number, number];
  allowed_resolutions: [number, number][];
  pretrained: Record<string, string>;
  pretrained_sources: string[];
  default_pretrained: string;
  /** source -> its weights are on this server ("none" always is). */
  local_sources?: Record<string, boolean>;
  /** The default source when its weights are here, else one that is, else "none". */
  suggested_pretrained?: string;
  memory_gb: number;
  params_m: number;
}

export interface Augmentations {
  hflip: boolean;
  scale_crop: boolean;
  scale_range: [number, number];
  rotate: boolean;
  rotate_degrees: number;
  color_jitter: boolean;
  color_strength: number;
}

/** The `config` of a workflow: the fields of training.modeling.trainer.TrainConfig. */
export interface TrainConfig {
  family: string;
  variant: string;
  resolution: [number, number] | null;
  batch_size: number;
  steps: number;
  lr: number;
  schedule: "constant" | "linear" | "cosine" | "poly";
  warmup_steps: number;
  optimizer: "adamw" | "sgd";
  weight_decay: number;
  momentum: number;
  max_grad_norm: number | null;
  augmentations: Augmentations;
  eval_interval: number;
  log_interval: number;
  checkpoint_every_n_steps: number;
  keep_best_metric: "miou" | "mean_f1" | "pixel_accuracy" | null;
  keep_last_k: number;
  early_stopping_patience: number;
  num_gpus: number;
  seed: number;
  mixed_precision: "auto" | "no" | "fp16" | "bf16";
  pretrained: string | null;
  [extra: string]: unknown;
}

export interface Workflow {
  id: number;
  project: number;
  name: string;
  config: TrainConfig;
  val_fraction: number;
  created_at: string;
  updated_at: string;
}

export type RunStatus = "queued" | "preparing" | "running" | "completed" | "failed" | "cancelled";
export const FINISHED_STATUSES: readonly RunStatus[] = ["completed", "failed", "cancelled"];

export interface TrainingRun {
  id: number;
  /** 1, 2, ... within the project. */
  number?: number;
  project: number;
  workflow: number | null;
  config: TrainConfig;
  status: RunStatus;
  step: number;
  total_steps: number;
  message: string;
  error: string;
  cancel_requested: boolean;
  /** Cancelled with keep_best: the best checkpoint so far becomes an artifact. */
  cancel_keep_best: boolean;
  attempts: number;
  worker: string;
  heartbeat_at: string | null;
  best_metric: number | null;
  best_step: number | null;
  images_per_second: number | null;
  dataset: { train?: number; val?: number; [k: string]: unknown };
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  artifact: number | null;
}

export interface PerClassMetric {
  index: number;
  name: string;
  iou: number | null;
  f1: number | null;
  support: number;
  predicted: number;
}

/** A validation image's prediction: one COCO RLE per predicted model label (0 = background left out). */
export interface SamplePrediction {
  index: number;
  size: [number, number];
  masks: { label: number; rle: CocoRle }[] | Record<string, CocoRle>;
  asset_id?: number;
}

/** values of a train point: loss, lr, images_per_second, epoch, elapsed_s (device when reported). */
export type TrainValues = Record<string, number | string | null>;

/** values of an eval point (training.modeling.metrics.metrics_from_confusion + samples). */
export interface EvalValues {
  miou: number | null;
  mean_f1: number | null;
  pixel_accuracy: number | null;
  pixels?: number;
  per_class?: PerClassMetric[];
  /** rows = truth label, columns = predicted label (pixel counts), when the run reports it. */
  confusion?: number[][];
  samples?: SamplePrediction[];
  [k: string]: unknown;
}

export interface MetricPoint<V = Record<string, unknown>> {
  id: number;
  step: number;
  kind?: "train" | "eval";
  values: V;
  created_at?: string;
}

export interface Artifact {
  id: number;
  project: number;
  run: number | null;
  name: string;
  family: string;
  variant: string;
  meta: Record<string, unknown>;
  size_bytes: number;
  created_at: string;
}

export const trainingKeys = {
  models: ["training-models"] as const,
  workflows: (projectId: number) => ["workflows", projectId] as const,
  runs: (projectId: number) => ["runs", projectId] as const,
  run: (id: number) => ["run", id] as const,
  metrics: (id: number) => ["run-metrics", id] as const,
  artifacts: (projectId: number) => ["artifacts", projectId] as const,
  artifact: (id: number) => ["artifact", id] as const,
};

/** Problems listed in a 400 from the workflow/run endpoints (details.problems), else the message. */
export function problemsOf(err: unknown): string[] {
  if (!(err instanceof ApiError)) return err ? [String((err as Error).message ?? err)] : [];
  const details = err.details as { problems?: unknown } | Record<string, unknown> | null;
  if (details && Array.isArray((details as { problems?: unknown }).problems)) {
    return ((details as { problems: unknown[] }).problems).map(String);
  }
  // DRF field errors: {"field": ["message", ...]}
  if (details && typeof details === "object") {
    const out: string[] = [];
    for (const [field, msgs] of Object.entries(details)) {
      for (const m of Array.isArray(msgs) ? msgs : [msgs]) out.push(`${field}: ${String(m)}`);
    }
    if (out.length) return out;
  }
  return [err.message];
}

export function useModels() {
  return useQuery({
    queryKey: trainingKeys.models,
    queryFn: () => api<ModelSpec[]>("/training/models/"),
    staleTime: 5 * 60_000,
  });
}

export function useWorkflows(projectId: number) {
  return useQuery({
    queryKey: trainingKeys.workflows(projectId),
    queryFn: () => api<Workflow[]>(`/projects/${projectId}/workflows/`),
  });
}

/** Runs of a project, newest first; polled so runs started elsewhere (API, other tabs) appear. */
export function useRuns(projectId: number, pollMs = 2000) {
  return useQuery({
    queryKey: trainingKeys.runs(projectId),
    queryFn: ({ signal }) =>
      api<Page<TrainingRun>>("/trainings/", { query: { project: projectId, page_size: 50 }, signal }),
    placeholderData: keepPreviousData,
    refetchInterval: pollMs,
    refetchIntervalInBackground: false,
  });
}

export function useRun(id: number, pollMs: number | false = false) {
  return useQuery({
    queryKey: trainingKeys.run(id),
    queryFn: () => api<TrainingRun>(`/trainings/${id}/`),
    refetchInterval: pollMs,
  });
}

export function fetchMetrics(id: number, signal?: AbortSignal) {
  return api<MetricPoint[]>(`/trainings/${id}/metrics/`, { signal });
}

export function useArtifacts(projectId: number) {
  return useQuery({
    queryKey: trainingKeys.artifacts(projectId),
    queryFn: () => api<Page<Artifact>>("/artifacts/", { query: { project: projectId, page_size: 50 } }),
  });
}

export function useArtifact(id: number | null) {
  return useQuery({
    queryKey: trainingKeys.artifact(id ?? 0),
    queryFn: () => api<Artifact>(`/artifacts/${id}/`),
    enabled: id !== null,
  });
}

/** Save the builder's settings as a workflow, then start a run of it. */
export function useStartTraining(projectId: number) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: async (v: { name: string; config: Partial<TrainConfig>; val_fraction: number; workflowId?: number }) => {
      let workflowId = v.workflowId;
      if (workflowId === undefined) {
        const wf = await api<Workflow>(`/projects/${projectId}/workflows/`, {
          method: "POST",
          body: { name: v.name, config: v.config, val_fraction: v.val_fraction },
        });
        workflowId = wf.id;
      }
      return api<TrainingRun>("/trainings/", { method: "POST", body: { workflow: workflowId } });
    },
    onSettled: () => {
      void qc.invalidateQueries({ queryKey: trainingKeys.workflows(projectId) });
      void qc.invalidateQueries({ queryKey: trainingKeys.runs(projectId) });
    },
  });
}

export function useCancelRun() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ id, keepBest = false }: { id: number; keepBest?: boolean }) =>
      api<TrainingRun>(`/trainings/${id}/cancel/`, { method: "POST", body: { keep_best: keepBest } }),
    onSuccess: (run) => {
      qc.setQueryData(trainingKeys.run(run.id), run);
      void qc.invalidateQueries({ queryKey: trainingKeys.runs(run.project) });
    },
  });
}
