import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api } from "../../api/client";
import { keys, useClasses } from "../../api/hooks";
import type { LabelClass } from "../../api/types";

const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#fabed4", "#469990"];

export const IGNORE_EXPLANATION =
  "Ignore (void): pixels of this class are left out of training and evaluation. Use it for regions " +
  "nobody can label reliably (blur, occlusion, edges). One per project.";

/** List, add, rename, recolour and delete a project's label classes; mark one as ignore (void). */
export function ClassEditor({ projectId, editable }: { projectId: number; editable: boolean }) {
  const classes = useClasses(projectId);
  const qc = useQueryClient();
  const invalidate = () => qc.invalidateQueries({ queryKey: keys.classes(projectId) });
  const [name, setName] = useState("");
  const nextColor = PALETTE[(classes.data?.length ?? 0) % PALETTE.length];
  const [color, setColor] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () =>
      api<LabelClass>(`/projects/${projectId}/classes/`, {
        method: "POST",
        body: { name: name.trim(), color: color ?? nextColor },
      }),
    onSuccess: () => {
      setName("");
      setColor(null);
      invalidate();
    },
  });
  const update = useMutation({
    mutationFn: (v: { id: number; name?: string; color?: string; is_ignore?: boolean }) =>
      api<LabelClass>(`/projects/${projectId}/classes/${v.id}/`, {
        method: "PATCH",
        body: { name: v.name, color: v.color, is_ignore: v.is_ignore },
      }),
    onSettled: invalidate,
  });
  const remove = useMutation({
    mutationFn: (id: number) => api<void>(`/projects/${projectId}/classes/${id}/`, { method: "DELETE" }),
    onSettled: invalidate,
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (name.trim()) create.mutate();
  };
  const error = create.error ?? update.error ?? remove.error;
  const ignoreClass = classes.data?.find((c) => c.is_ignore);
  return (
    <div className="class-editor">
      {classes.isPending && <p role="status">Loading classes…</p>}
      <ol className="class-list" aria-label="Classes">
        {classes.data?.map((c, i) => (
          <li key={c.id} className="class-row">
            <span className="key-hint" title={`Key ${i + 1}`}>
              {i < 9 ? i + 1 : ""}
            </span>
            <input
              type="color"
              aria-label={`Colour of ${c.name}`}
              defaultValue={c.color}
              disabled={!editable}
              onBlur={(e) => e.target.value !== c.color && update.mutate({ id: c.id, color: e.target.value })}
            />
            <input
              aria-label={`Name of class ${c.name}`}
              defaultValue={c.name}
              disabled={!editable}
              onBlur={(e) => {
                const v = e.target.value.trim();
                if (v && v !== c.name) update.mutate({ id: c.id, name: v });
              }}
              onKeyDown={(e) => e.key === "Enter" && (e.target as HTMLInputElement).blur()}
            />
            <label
              className={`check ignore-toggle${c.is_ignore ? " on" : ""}`}
              title={ignoreClass && !c.is_ignore ? `${ignoreClass.name} is the ignore class` : IGNORE_EXPLANATION}
            >
              <input
                type="checkbox"
                aria-label={`Ignore class ${c.name} (void)`}
                checked={!!c.is_ignore}
                disabled={!editable || update.isPending || (!!ignoreClass && !c.is_ignore)}
                onChange={(e) => update.mutate({ id: c.id, is_ignore: e.target.checked })}
              />
              ignore (void)
            </label>
            {editable && (
              <button
                type="button"
                className="danger"
                aria-label={`Delete class ${c.name}`}
                onClick={() => window.confirm(`Delete class "${c.name}" and its masks?`) && remove.mutate(c.id)}
              >
                Delete
              </button>
            )}
          </li>
        ))}
      </ol>
      {classes.data?.length === 0 && <p className="muted">No classes yet.</p>}
      {!!classes.data?.length && (
        <p className="muted small" data-testid="ignore-explanation">
          {IGNORE_EXPLANATION}
        </p>
      )}
      {editable && (
        <form className="inline-form" onSubmit={submit} aria-label="New class">
          <label>
            Class name
            <input name="class-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
          </label>
          <label>
            Colour
            <input name="class-color" type="color" value={color ?? nextColor} onChange={(e) => setColor(e.target.value)} />
          </label>
          <button type="submit" className="primary" disabled={create.isPending}>
            Add class
          </button>
        </form>
      )}
      {error && (
        <p className="error" role="alert">
          {error.message}
        </p>
      )}
    </div>
  );
}
