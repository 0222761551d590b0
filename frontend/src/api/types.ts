/** Shapes of the JSON the Tessera API returns (see /api/v1/schema/). */
import type { CocoRle } from "../lib/rle";

export interface User {
  id: number;
  username: string;
  /** Logged in with a one-time password: the API refuses everything until it is changed. */
  must_change_password?: boolean;
  /** Owners may create local accounts (no identity provider). */
  local_accounts?: boolean;
}

export interface Page<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

export type Role = "owner" | "annotator" | "viewer";

export interface Project {
  id: number;
  name: string;
  type: "segmentation";
  description: string;
  role: Role;
  asset_count?: number;
  /** Assets per status (project list only). */
  status_counts?: Record<AssetStatus, number> | null;
  /** Thumbnail of the project's first asset (project list only). */
  cover_url?: string | null;
  created_at: string;
  updated_at?: string;
}

export interface Member {
  id: number;
  username: string;
  role: Role;
  created_at: string;
}

export interface LabelClass {
  id: number;
  name: string;
  color: string;
  index: number;
  /** The project's void / ignore class (at most one): left out of training and evaluation. */
  is_ignore?: boolean;
}

export type AssetStatus = "unlabeled" | "in_progress" | "labeled" | "reviewed" | "rejected";
export type AssetSplit = "train" | "val" | "test";

export interface Asset {
  id: number;
  project_id: number;
  name: string;
  width: number;
  height: number;
  status: AssetStatus;
  split: AssetSplit;
  /** True when a person chose the split (auto-split leaves it alone). */
  split_locked?: boolean;
  review_comment?: string;
  reviewed_by?: string | null;
  /** Masks drawn at thumbnail size (null while unlabelled). */
  overlay_url?: string | null;
  video_id: number | null;
  frame_index: number | null;
  file_url: string;
  thumbnail_url: string | null;
}

export interface UploadError {
  file: string;
  code: string;
  message: string;
}

export interface UploadResult {
  created: Asset[];
  duplicates: unknown[];
  videos: { id: number; name: string; status: string; progress: number }[];
  errors: UploadError[];
}

export interface Job {
  id: number;
  kind: string;
  status: "queued" | "running" | "succeeded" | "failed";
  progress: number;
  message: string;
  result: Record<string, unknown> | null;
  errors: unknown;
  download_url: string | null;
  params?: Record<string, unknown>;
}

export interface MaskEntry {
  class_id: number;
  rle: CocoRle;
}

export interface IntelliBrushRequest {
  points: [number, number, number][];
  box?: [number, number, number, number];
  mask_input?: unknown;
}

export interface IntelliBrushResult {
  rle: CocoRle;
  score: number;
  method: "sam" | "fallback" | string;
  message?: string;
  /** Why the fallback was used, or how to get SAM (e.g. missing weights). */
  hint?: string | null;
  timing_ms?: Record<string, number>;
}
