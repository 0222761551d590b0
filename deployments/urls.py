from django.urls import path

from deployments import apis

urlpatterns = [
    path("deployments/", apis.DeploymentListCreateApi.as_view(), name="deployment-list"),
    path("deployments/<int:deployment_id>/", apis.DeploymentDetailApi.as_view(), name="deployment-detail"),
    path("deployments/<int:deployment_id>/keys/", apis.ApiKeyListCreateApi.as_view(), name="deployment-keys"),
    path("deployments/<int:deployment_id>/keys/<int:key_id>/", apis.ApiKeyDetailApi.as_view(),
         name="deployment-key-detail"),
    path("deployments/<int:deployment_id>/predict/", apis.DeploymentPredictApi.as_view(),
         name="deployment-predict"),
    path("artifacts/<int:artifact_id>/export/", apis.ArtifactExportApi.as_view(), name="artifact-export"),
    path("artifacts/<int:artifact_id>/exports/", apis.ArtifactExportsApi.as_view(), name="artifact-exports"),
    path("artifacts/<int:artifact_id>/prune/", apis.ArtifactPruneApi.as_view(), name="artifact-prune"),
]
