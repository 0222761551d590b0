import { Navigate, Route, Routes, useLocation } from "react-router";
import type { ReactNode } from "react";
import { useMe } from "./api/hooks";
import { Layout } from "./components/Layout";
import { LoginPage } from "./pages/LoginPage";
import { ProjectsPage } from "./pages/ProjectsPage";
import { ProjectPage } from "./pages/ProjectPage";
import { AnnotatorPage } from "./annotator/AnnotatorPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { TrainingPage } from "./training/TrainingPage";
import { RunPage } from "./training/RunPage";
import { DeploymentsPage } from "./deployments/DeploymentsPage";
import { DeploymentPage } from "./deployments/DeploymentPage";
import { ReviewPage } from "./pages/project/ReviewPage";
import { MembersPage } from "./members/MembersPage";
import { ChangePasswordPage } from "./members/ChangePasswordPage";

function RequireAuth({ children }: { children: ReactNode }) {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return <p className="page-status" role="status">Loading…</p>;
  if (!me.data) {
    const next = encodeURIComponent(location.pathname + location.search);
    return <Navigate to={`/login?next=${next}`} replace />;
  }
  if (me.data.must_change_password) return <ChangePasswordPage username={me.data.username} />;
  return <>{children}</>;
}

export function App() {
  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route
        path="/projects/:projectId/annotate/:assetId"
        element={
          <RequireAuth>
            <AnnotatorPage />
          </RequireAuth>
        }
      />
      <Route
        element={
          <RequireAuth>
            <Layout />
          </RequireAuth>
        }
      >
        <Route path="/" element={<ProjectsPage />} />
        <Route path="/projects/:projectId" element={<ProjectPage />} />
        <Route path="/projects/:projectId/training" element={<TrainingPage />} />
        <Route path="/projects/:projectId/training/runs/:runId" element={<RunPage />} />
        <Route path="/projects/:projectId/deployments" element={<DeploymentsPage />} />
        <Route path="/projects/:projectId/deployments/:deploymentId" element={<DeploymentPage />} />
        <Route path="/projects/:projectId/review/:assetId" element={<ReviewPage />} />
        <Route path="/projects/:projectId/members" element={<MembersPage />} />
        <Route path="/projects/:projectId/:tab" element={<ProjectPage />} />
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}
