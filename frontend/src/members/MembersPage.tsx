import { useState, type FormEvent } from "react";
import { useParams } from "react-router";
import { useMe, useProject } from "../api/hooks";
import type { Role } from "../api/types";
import { useTitle } from "../components/useTitle";
import { useMemberMutations, useMembers } from "./members";
import "./members.css";

const ROLES: { value: Role; label: string; hint: string }[] = [
  { value: "owner", label: "Owner", hint: "everything, including members, classes and deployments" },
  { value: "annotator", label: "Annotator", hint: "upload, label, train" },
  { value: "viewer", label: "Viewer", hint: "look only" },
];

function RoleSelect({ value, onChange, label, disabled }: {
  value: Role; onChange: (r: Role) => void; label: string; disabled?: boolean;
}) {
  return (
    <select aria-label={label} value={value} disabled={disabled} onChange={(e) => onChange(e.target.value as Role)}>
      {ROLES.map((r) => (
        <option key={r.value} value={r.value}>
          {r.label}
        </option>
      ))}
    </select>
  );
}

/** Owners add people by name (or create a local account with a one-time password), change roles, remove. */
export function MembersPage() {
  const id = Number(useParams().projectId);
  const project = useProject(id);
  const me = useMe();
  const members = useMembers(id);
  const m = useMemberMutations(id);
  useTitle(project.data ? `Members · ${project.data.name}` : "Members");
  const [username, setUsername] = useState("");
  const [role, setRole] = useState<Role>("annotator");
  const [created, setCreated] = useState<{ username: string; password: string } | null>(null);
  const isOwner = project.data?.role === "owner";
  const owners = members.data?.filter((x) => x.role === "owner").length ?? 0;

  if (project.error) {
    return (
      <section className="page">
        <p className="error" role="alert">{project.error.message}</p>
      </section>
    );
  }
  const add = (e: FormEvent) => {
    e.preventDefault();
    setCreated(null);
    m.add.mutate({ username: username.trim(), role }, { onSuccess: () => setUsername("") });
  };
  const createUser = () => {
    setCreated(null);
    m.createUser.mutate(
      { username: username.trim(), role },
      {
        onSuccess: (r) => {
          setCreated({ username: r.member.username, password: r.one_time_password });
          setUsername("");
        },
      },
    );
  };
  const error = m.add.error ?? m.createUser.error ?? m.setRole.error ?? m.remove.error ?? members.error;
  return (
    <section className="page members-page">
      <h1>
        {project.data?.name ?? "…"} <span className="muted small">Members</span>
      </h1>
      {project.data && !isOwner && (
        <p className="muted">Only project owners manage members; you are {project.data.role}.</p>
      )}
      <table className="runs members" aria-label="Members">
        <thead>
          <tr>
            <th scope="col">User</th>
            <th scope="col">Role</th>
            {isOwner && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {members.data?.map((x) => {
            const lastOwner = x.role === "owner" && owners <= 1;
            return (
              <tr key={x.id} data-member={x.username}>
                <td>
                  {x.username} {x.username === me.data?.username && <span className="muted small">(you)</span>}
                </td>
                <td>
                  {isOwner ? (
                    <RoleSelect
                      label={`Role of ${x.username}`}
                      value={x.role}
                      disabled={lastOwner || m.setRole.isPending}
                      onChange={(r) => m.setRole.mutate({ id: x.id, role: r })}
                    />
                  ) : (
                    x.role
                  )}
                  {isOwner && lastOwner && <span className="muted small"> last owner</span>}
                </td>
                {isOwner && (
                  <td>
                    <button
                      type="button"
                      className="danger"
                      aria-label={`Remove ${x.username}`}
                      disabled={lastOwner || m.remove.isPending}
                      title={lastOwner ? "A project keeps at least one owner" : undefined}
                      onClick={() => window.confirm(`Remove ${x.username} from the project?`) && m.remove.mutate(x.id)}
                    >
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
      {isOwner && (
        <form className="inline-form member-form" onSubmit={add} aria-label="Add a member">
          <h2>Add a member</h2>
          <label>
            Username
            <input name="member-username" value={username} onChange={(e) => setUsername(e.target.value)} required maxLength={150} />
          </label>
          <label>
            Role
            <RoleSelect label="Role" value={role} onChange={setRole} />
          </label>
          <button type="submit" className="primary" disabled={!username.trim() || m.add.isPending}>
            Add existing user
          </button>
          {me.data?.local_accounts !== false && (
            <button type="button" disabled={!username.trim() || m.createUser.isPending} onClick={createUser}>
              Create new user
            </button>
          )}
          <p className="muted small member-hint">
            {ROLES.map((r) => `${r.label}: ${r.hint}`).join(" · ")}
          </p>
        </form>
      )}
      {created && (
        <div className="card one-time-password" role="status">
          <p>
            Created <strong>{created.username}</strong>. Their one-time password, shown only now:{" "}
            <code data-testid="one-time-password">{created.password}</code>
          </p>
          <p className="muted small">They choose their own password when they first log in.</p>
        </div>
      )}
      {error && (
        <p className="error" role="alert">
          {error.message}
        </p>
      )}
    </section>
  );
}
