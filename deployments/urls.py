from django.urls import path

from deployments import apis

urlpatterns = [
    path("deployments/", apis.DeploymentListCreateApi.as_view(), name="deployment-list"),
    path("deployments/<id:deployment_id>/", apis.DeploymentDetailApi.as_view(), name="deployment-detail"),
    path("deployments/<id:deployment_id>/keys/", apis.ApiKeyListCreateApi.as_view(), name="deployment-keys"),
    path("deployments/<id:deployment_id>/keys/<id:key_id>/", apis.ApiKeyDetailApi.as_view(),
         name="deployment-key-detail"),
    path("deployments/<id:deployment_id>/predict/", apis.DeploymentPredictApi.as_view(),
         name="deployment-predict"),
    path("artifacts/<id:artifact_id>/export/", apis.ArtifactExportApi.as_view(), name="artifact-export"),
    path("artifacts/<id:artifact_id>/exports/", apis.ArtifactExportsApi.as_view(), name="artifact-exports"),
    path("artifacts/<id:artifact_id>/prune/", apis.ArtifactPruneApi.as_view(), name="artifact-prune"),
]
