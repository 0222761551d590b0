/** React Query hooks over the API client: one per resource, keys shared for invalidation. */
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError, ensureCsrf } from "./client";
import type { Asset, AssetSplit, AssetStatus, Job, LabelClass, Page, Project, User } from "./types";

export const keys = {
  me: ["me"] as const,
  projects: ["projects"] as const,
  project: (id: number) => ["project", id] as const,
  classes: (id: number) => ["classes", id] as const,
  assets: (id: number, f: AssetFilters) => ["assets", id, f] as const,
  asset: (id: number) => ["asset", id] as const,
  job: (id: number) => ["job", id] as const,
};

export interface AssetFilters {
  status?: AssetStatus | "";
  split?: AssetSplit | "";
  page: number;
  pageSize: number;
}

export function useMe() {
  return useQuery({
    queryKey: keys.me,
    queryFn: async (): Promise<User | null> => {
      try {
        return await api<User>("/auth/me/");
      } catch (e) {
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return null;
        throw e;
      }
    },
    staleTime: 60_000,
  });
}

export function useLogin() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: async (v: { username: string; password: string }) => {
      await ensureCsrf();
      return api<User>("/auth/login/", { method: "POST", body: v });
    },
    onSuccess: async (user) => {
      await ensureCsrf(true); // Django rotates the CSRF token on login
      qc.clear();
      qc.setQueryData(keys.me, user);
    },
  });
}

export function useLogout() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: () => api<void>("/auth/logout/", { method: "POST" }),
    onSettled: () => {
      qc.clear();
      qc.setQueryData(keys.me, null);
    },
  });
}

export function useProjects(page = 1, opts: { search?: string; sort?: string } = {}) {
  return useQuery({
    queryKey: [...keys.projects, page, opts.search ?? "", opts.sort ?? ""],
    queryFn: () =>
      api<Page<Project>>("/projects/", { query: { page, page_size: 50, search: opts.search, sort: opts.sort } }),
    placeholderData: keepPreviousData,
  });
}

export function useProject(id: number, opts: { enabled?: boolean } = {}) {
  return useQuery({ queryKey: keys.project(id), queryFn: () => api<Project>(`/projects/${id}/`), ...opts });
}

export function useClasses(projectId: number) {
  return useQuery({
    queryKey: keys.classes(projectId),
    queryFn: async () => {
      const data = await api<LabelClass[] | Page<LabelClass>>(`/projects/${projectId}/classes/`);
      const list = Array.isArray(data) ? data : data.results;
      return [...list].sort((a, b) => a.index - b.index);
    },
  });
}

export function useAssets(projectId: number, f: AssetFilters) {
  return useQuery({
    queryKey: keys.assets(projectId, f),
    queryFn: ({ signal }) =>
      api<Page<Asset>>(`/projects/${projectId}/assets/`, {
        query: { status: f.status, split: f.split, page: f.page, page_size: f.pageSize },
        signal,
      }),
    placeholderData: keepPreviousData,
    // Thumbnails are made by a background worker: look again until every tile has one.
    refetchInterval: (q) =>
      q.state.dataUpdateCount < 100 && q.state.data?.results.some((a) => !a.thumbnail_url) ? 3000 : false,
  });
}

export function useAsset(id: number) {
  return useQuery({ queryKey: keys.asset(id), queryFn: () => api<Asset>(`/assets/${id}/`) });
}

/** Poll a job until it finishes. */
export function useJob(id: number | null) {
  return useQuery({
    queryKey: keys.job(id ?? 0),
    queryFn: () => api<Job>(`/jobs/${id}/`),
    enabled: id !== null,
    refetchInterval: (q) => {
      const s = q.state.data?.status;
      return s === "succeeded" || s === "failed" ? false : 1000;
    },
  });
}
