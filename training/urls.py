from django.urls import path

from training import apis

urlpatterns = [
    path("training/models/", apis.ModelListApi.as_view(), name="training-models"),
    path("projects/<id:project_id>/workflows/", apis.WorkflowListCreateApi.as_view(), name="workflow-list"),
    path("workflows/<id:workflow_id>/", apis.WorkflowDetailApi.as_view(), name="workflow-detail"),
    path("trainings/", apis.TrainingListStartApi.as_view(), name="training-list"),
    path("trainings/<id:run_id>/", apis.TrainingDetailApi.as_view(), name="training-detail"),
    path("trainings/<id:run_id>/cancel/", apis.TrainingCancelApi.as_view(), name="training-cancel"),
    path("trainings/<id:run_id>/metrics/", apis.TrainingMetricsApi.as_view(), name="training-metrics"),
    path("artifacts/", apis.ArtifactListApi.as_view(), name="artifact-list"),
    path("artifacts/<id:artifact_id>/", apis.ArtifactDetailApi.as_view(), name="artifact-detail"),
]
