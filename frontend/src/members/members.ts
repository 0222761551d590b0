/** Hooks for a project's members: list, add by name, create a local user, change a role, remove. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../api/client";
import { keys } from "../api/hooks";
import type { Member, Role, User } from "../api/types";

export const memberKeys = { list: (projectId: number) => ["members", projectId] as const };

export function useMembers(projectId: number) {
  return useQuery({
    queryKey: memberKeys.list(projectId),
    queryFn: () => api<Member[]>(`/projects/${projectId}/members/`),
  });
}

export function useMemberMutations(projectId: number) {
  const qc = useQueryClient();
  const onSettled = () => {
    qc.invalidateQueries({ queryKey: memberKeys.list(projectId) });
    qc.invalidateQueries({ queryKey: keys.project(projectId) }); // the caller's own role may change
  };
  const base = `/projects/${projectId}/members/`;
  return {
    add: useMutation({
      mutationFn: (v: { username: string; role: Role }) => api<Member>(base, { method: "POST", body: v }),
      onSettled,
    }),
    createUser: useMutation({
      mutationFn: (v: { username: string; role: Role }) =>
        api<{ member: Member; one_time_password: string }>(`${base}new-user/`, { method: "POST", body: v }),
      onSettled,
    }),
    setRole: useMutation({
      mutationFn: (v: { id: number; role: Role }) =>
        api<Member>(`${base}${v.id}/`, { method: "PATCH", body: { role: v.role } }),
      onSettled,
    }),
    remove: useMutation({
      mutationFn: (id: number) => api<void>(`${base}${id}/`, { method: "DELETE" }),
      onSettled,
    }),
  };
}

export function useChangePassword() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (v: { current_password: string; new_password: string }) =>
      api<User>("/auth/password/", { method: "POST", body: v }),
    // Only /auth/me/ was read while the password was pending; RequireAuth watches it.
    onSuccess: (user) => qc.setQueryData(keys.me, user),
  });
}
