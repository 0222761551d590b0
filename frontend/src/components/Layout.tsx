import { Link, NavLink, Outlet, useNavigate, useParams } from "react-router";
import { useLogout, useMe, useProject } from "../api/hooks";

/** App chrome: top bar with navigation (training/deployments are reserved slots) and the user menu. */
export function Layout() {
  const me = useMe();
  const logout = useLogout();
  const navigate = useNavigate();
  const { projectId } = useParams();
  const project = useProject(Number(projectId ?? 0), { enabled: Boolean(projectId) });
  return (
    <div className="app">
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" className="brand">
          Tessera
        </Link>
        <nav aria-label="Main">
          <NavLink to="/" end>
            Projects
          </NavLink>
          {projectId && (
            <>
              <NavLink to={`/projects/${projectId}`} end>
                Assets
              </NavLink>
              <NavLink to={`/projects/${projectId}/classes`}>Classes</NavLink>
              <NavLink to={`/projects/${projectId}/data`}>Import / export</NavLink>
              <NavLink to={`/projects/${projectId}/training`}>Training</NavLink>
              <NavLink to={`/projects/${projectId}/deployments`}>Deployments</NavLink>
              {project.data?.role === "owner" && <NavLink to={`/projects/${projectId}/members`}>Members</NavLink>}
            </>
          )}
        </nav>
        <div className="user">
          <span aria-label="Signed in as">{me.data?.username}</span>
          <button
            type="button"
            onClick={() => logout.mutate(undefined, { onSettled: () => navigate("/login") })}
          >
            Log out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}
