import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { api } from "../api/client";
import { keys, useProjects } from "../api/hooks";
import type { Project } from "../api/types";
import { useTitle } from "../components/useTitle";
import { STATUSES, STATUS_LABEL } from "../api/assets";
import "./project/manage.css";

const SORTS = { newest: "Newest", updated: "Recently changed", name: "Name", oldest: "Oldest" } as const;

export function ProjectsPage() {
  useTitle("Projects");
  const [page, setPage] = useState(1);
  const [search, setSearch] = useState("");
  const [sort, setSort] = useState<keyof typeof SORTS>("newest");
  const projects = useProjects(page, { search, sort });
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const create = useMutation({
    mutationFn: () =>
      api<Project>("/projects/", { method: "POST", body: { name, description, type: "segmentation" } }),
    onSuccess: (p) => {
      qc.invalidateQueries({ queryKey: keys.projects });
      navigate(`/projects/${p.id}`);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  const data = projects.data;
  const pages = data ? Math.max(1, Math.ceil(data.count / 50)) : 1;
  return (
    <section className="page">
      <h1>Projects</h1>
      <form className="inline-form card" onSubmit={submit} aria-label="New project">
        <h2>New project</h2>
        <label>
          Name
          <input name="name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
        </label>
        <label>
          Description
          <input name="description" value={description} onChange={(e) => setDescription(e.target.value)} />
        </label>
        <button type="submit" className="primary" disabled={create.isPending}>
          Create project
        </button>
        {create.error && (
          <p className="error" role="alert">
            {create.error.message}
          </p>
        )}
      </form>
      <div className="project-tools" role="search">
        <label>
          Search
          <input
            type="search"
            name="project-search"
            value={search}
            placeholder="Project name"
            onChange={(e) => {
              setSearch(e.target.value);
              setPage(1);
            }}
          />
        </label>
        <label>
          Sort
          <select name="project-sort" value={sort} onChange={(e) => setSort(e.target.value as keyof typeof SORTS)}>
            {Object.entries(SORTS).map(([k, label]) => (
              <option key={k} value={k}>
                {label}
              </option>
            ))}
          </select>
        </label>
      </div>
      {projects.isPending && <p role="status">Loading projects…</p>}
      {projects.error && (
        <p className="error" role="alert">
          {projects.error.message}
        </p>
      )}
      {data && data.results.length === 0 && (
        <p className="muted">{search ? `No project matches “${search}”.` : "No projects yet. Create one above."}</p>
      )}
      <ul className="project-list" aria-label="Projects">
        {data?.results.map((p) => (
          <li key={p.id} className="card project-card" data-testid="project-card">
            {p.cover_url ? (
              <img className="cover" src={p.cover_url} alt="" loading="lazy" width={96} height={72} />
            ) : (
              <span className="cover muted small" aria-hidden="true">
                no images
              </span>
            )}
            <div>
              <Link to={`/projects/${p.id}`}>
                <strong>{p.name}</strong>
              </Link>
              <div className="muted">
                {p.asset_count ?? 0} assets · {p.role}
              </div>
              {p.status_counts && (
                <div className="counts" aria-label="Assets per status">
                  {STATUSES.filter((s) => p.status_counts?.[s]).map((s) => (
                    <span key={s} className={`status-${s}`}>
                      {p.status_counts?.[s]} {STATUS_LABEL[s].toLowerCase()}
                    </span>
                  ))}
                </div>
              )}
              {p.description && <p>{p.description}</p>}
            </div>
          </li>
        ))}
      </ul>
      {pages > 1 && <Pager page={page} pages={pages} onPage={setPage} />}
    </section>
  );
}

export function Pager({ page, pages, onPage }: { page: number; pages: number; onPage: (p: number) => void }) {
  return (
    <nav className="pager" aria-label="Pagination">
      <button type="button" disabled={page <= 1} onClick={() => onPage(1)} aria-label="First page">
        «
      </button>
      <button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)} aria-label="Previous page">
        ‹
      </button>
      <span aria-live="polite">
        Page {page} of {pages}
      </span>
      <button type="button" disabled={page >= pages} onClick={() => onPage(page + 1)} aria-label="Next page">
        ›
      </button>
      <button type="button" disabled={page >= pages} onClick={() => onPage(pages)} aria-label="Last page">
        »
      </button>
    </nav>
  );
}
