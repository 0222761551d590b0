"""HTTP API of training: the model catalogue, workflows, runs (start, status, cancel,
metrics) and artifacts. One view per resource action; logic lives in services and
selectors. Runs whose worker died are recovered by a periodic task (training.tasks)."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from common.fields import IdField
from common.pagination import PageNumberPagination
from projects.models import Role
from projects.selectors import project_get_for_user
from training import selectors, services
from training.models import Artifact, MetricPoint, TrainingRun, TrainingWorkflow


class ModelListApi(APIView):
    """The trainable models: family, variant, resolutions, pretrained sources, memory."""

    def get(self, request):
        return Response(selectors.model_catalogue())


class WorkflowOutput(serializers.ModelSerializer):
    class Meta:
        model = TrainingWorkflow
        fields = ["id", "project", "name", "config", "val_fraction", "created_at", "updated_at"]


class WorkflowListCreateApi(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        config = serializers.DictField(help_text="TrainConfig fields: family, variant, resolution, "
                                       "batch_size, steps, lr, schedule, warmup_steps, optimizer, "
                                       "weight_decay, augmentations, eval_interval, "
                                       "checkpoint_every_n_steps, keep_best_metric, keep_last_k, "
                                       "early_stopping_patience, num_gpus, pretrained, seed, ...")
        val_fraction = serializers.FloatField(required=False, default=0.2)

    @extend_schema(responses=WorkflowOutput(many=True))
    def get(self, request, project_id: int):
        project = project_get_for_user(user=request.user, project_id=project_id)
        return Response(WorkflowOutput(selectors.workflow_list(project=project), many=True).data)

    @extend_schema(request=Input, responses={201: WorkflowOutput})
    def post(self, request, project_id: int):
        project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ANNOTATOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        workflow = services.workflow_create(project=project, user=request.user, **data.validated_data)
        return Response(WorkflowOutput(workflow).data, status=status.HTTP_201_CREATED)


class WorkflowDetailApi(APIView):
    @extend_schema(responses=WorkflowOutput)
    def get(self, request, workflow_id: int):
        workflow = selectors.workflow_get_for_user(user=request.user, workflow_id=workflow_id)
        return Response(WorkflowOutput(workflow).data)

    def delete(self, request, workflow_id: int):
        workflow = selectors.workflow_get_for_user(user=request.user, workflow_id=workflow_id,
                                                   min_role=Role.ANNOTATOR)
        services.workflow_delete(workflow=workflow)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RunOutput(serializers.ModelSerializer):
    artifact = serializers.SerializerMethodField()
    number = serializers.SerializerMethodField(help_text="1, 2, ... within the project")

    class Meta:
        model = TrainingRun
        fields = ["id", "number", "project", "workflow", "config", "status", "step", "total_steps", "message",
                  "error", "cancel_requested", "cancel_keep_best", "attempts", "worker", "heartbeat_at", "best_metric",
                  "best_step", "images_per_second", "dataset", "created_at", "started_at",
                  "finished_at", "artifact"]

    def get_artifact(self, run: TrainingRun) -> int | None:
        artifact = getattr(run, "artifact", None)
        return artifact.pk if artifact else None

    def get_number(self, run: TrainingRun) -> int:
        number = getattr(run, "number", None)  # annotated in lists
        return number if number is not None else selectors.run_number(run=run)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        dataset = dict(data.get("dataset") or {})
        dataset.pop("ids", None)  # asset id lists can be long; counts are enough here
        data["dataset"] = dataset
        return data


class TrainingListStartApi(APIView):
    pagination_class = PageNumberPagination  # the list is paginated (schema)
    class Input(serializers.Serializer):
        workflow = IdField()

    class Filter(serializers.Serializer):
        project = IdField(required=False)
        status = serializers.ChoiceField(choices=TrainingRun.Status.choices, required=False)

    @extend_schema(parameters=[Filter], responses=RunOutput(many=True))
    def get(self, request):
        filters = self.Filter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = PageNumberPagination()
        qs = selectors.run_list_for_user(user=request.user, filters=filters.validated_data)
        page = paginator.paginate_queryset(qs, request)
        return paginator.get_paginated_response(RunOutput(page, many=True).data)

    @extend_schema(request=Input, responses={201: RunOutput})
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        workflow = selectors.workflow_get_for_user(user=request.user, workflow_id=data.validated_data["workflow"],
                                                   min_role=Role.ANNOTATOR)
        run = services.training_run_start(workflow=workflow, user=request.user)
        return Response(RunOutput(run).data, status=status.HTTP_201_CREATED)


class TrainingDetailApi(APIView):
    @extend_schema(responses=RunOutput)
    def get(self, request, run_id: int):
        run = selectors.run_get_for_user(user=request.user, run_id=run_id)
        return Response(RunOutput(run).data)


class TrainingCancelApi(APIView):
    class Input(serializers.Serializer):
        keep_best = serializers.BooleanField(
            default=False, help_text="keep the best checkpoint so far (else the last) as an artifact")

    @extend_schema(request=Input, responses=RunOutput)
    def post(self, request, run_id: int):
        run = selectors.run_get_for_user(user=request.user, run_id=run_id, min_role=Role.ANNOTATOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.training_run_cancel(run=run, keep_best=data.validated_data["keep_best"])
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class MetricOutput(serializers.ModelSerializer):
    class Meta:
        model = MetricPoint
        fields = ["id", "step", "kind", "values", "created_at"]


class TrainingMetricsApi(APIView):
    class Filter(serializers.Serializer):
        after = IdField(required=False, min_value=0, help_text="only points with a larger id")
        kind = serializers.ChoiceField(choices=MetricPoint.Kind.choices, required=False)

    @extend_schema(parameters=[Filter], responses=MetricOutput(many=True))
    def get(self, request, run_id: int):
        run = selectors.run_get_for_user(user=request.user, run_id=run_id)
        filters = self.Filter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        points = selectors.metric_list(run=run, after_id=filters.validated_data.get("after"),
                                       kind=filters.validated_data.get("kind"))
        return Response(MetricOutput(points, many=True).data)


class ArtifactOutput(serializers.ModelSerializer):
    class Meta:
        model = Artifact
        fields = ["id", "project", "run", "name", "family", "variant", "meta", "size_bytes", "created_at"]


class ArtifactListApi(APIView):
    pagination_class = PageNumberPagination  # the list is paginated (schema)
    class Filter(serializers.Serializer):
        project = IdField(required=False)

    @extend_schema(parameters=[Filter], responses=ArtifactOutput(many=True))
    def get(self, request):
        filters = self.Filter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            selectors.artifact_list_for_user(user=request.user, filters=filters.validated_data), request)
        return paginator.get_paginated_response(ArtifactOutput(page, many=True).data)


class ArtifactDetailApi(APIView):
    @extend_schema(responses=ArtifactOutput)
    def get(self, request, artifact_id: int):
        artifact = selectors.artifact_get_for_user(user=request.user, artifact_id=artifact_id)
        return Response(ArtifactOutput(artifact).data)

    def delete(self, request, artifact_id: int):
        artifact = selectors.artifact_get_for_user(user=request.user, artifact_id=artifact_id,
                                                   min_role=Role.OWNER)
        services.artifact_delete(artifact=artifact)
        return Response(status=status.HTTP_204_NO_CONTENT)
