"""HTTP API of deployments: deploy an artifact, manage its API keys, predict, and the
artifact exports (download, report, pruning). One view per resource action; logic lives
in services and selectors."""
from __future__ import annotations

import time
from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from common import metrics
from common.auth import ExpiringTokenAuthentication
from common.conf import setting, truthy
from common.errors import ApplicationError, NotFoundError
from common.fields import IdField
from common.pagination import PageNumberPagination
from deployments import api_keys, exports, predict, registry, selectors, services
from deployments.auth import ApiKeyAuthentication, PredictRateThrottle
from deployments.models import ApiKey, ArtifactExport, Deployment
from projects.apis import JobOutput
from projects.models import Role
from projects.selectors import require_role
from training.selectors import artifact_get_for_user


class DeploymentOutput(serializers.ModelSerializer):
    predict_url = serializers.SerializerMethodField()
    workers_loaded = serializers.SerializerMethodField(
        help_text="running inference workers that hold this deployment's model hot")

    class Meta:
        model = Deployment
        fields = ["id", "project", "artifact", "name", "runtime", "device", "replicas", "status",
                  "reason", "worker", "load_ms", "created_at", "updated_at", "ready_at",
                  "predict_url", "workers_loaded"]

    def get_predict_url(self, deployment: Deployment) -> str:
        return f"/api/v1/deployments/{deployment.pk}/predict/"

    def get_workers_loaded(self, deployment: Deployment) -> int:
        if "inference_workers" not in self.context:  # one Redis read per response
            self.context["inference_workers"] = registry.inference_workers()
        return sum(deployment.artifact_id in w.get("artifacts", ())
                   for w in self.context["inference_workers"])


class DeploymentListCreateApi(APIView):
    pagination_class = PageNumberPagination  # the list is paginated (schema)
    @extend_schema_serializer(component_name="DeploymentCreateInput")
    class Input(serializers.Serializer):
        artifact = IdField()
        name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
        runtime = serializers.ChoiceField(choices=Deployment.Runtime.choices,
                                          default=Deployment.Runtime.ONNXRUNTIME)
        device = serializers.ChoiceField(choices=Deployment.Device.choices, default=Deployment.Device.CPU)
        replicas = serializers.IntegerField(min_value=1, max_value=64, default=1)

    @extend_schema_serializer(component_name="DeploymentListFilter")
    class Filter(serializers.Serializer):
        project = IdField(required=False)
        status = serializers.ChoiceField(choices=Deployment.Status.choices, required=False)

    @extend_schema(parameters=[Filter], responses=DeploymentOutput(many=True))
    def get(self, request):
        filters = self.Filter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = PageNumberPagination()
        qs = selectors.deployment_list_for_user(user=request.user, filters=filters.validated_data)
        page = paginator.paginate_queryset(qs, request)
        return paginator.get_paginated_response(DeploymentOutput(page, many=True).data)

    @extend_schema(request=Input, responses={201: DeploymentOutput})
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        artifact = artifact_get_for_user(user=request.user, artifact_id=fields.pop("artifact"),
                                         min_role=Role.OWNER)
        deployment = services.deployment_create(artifact=artifact, user=request.user, **fields)
        return Response(DeploymentOutput(deployment).data, status=status.HTTP_201_CREATED)


class DeploymentDetailApi(APIView):
    @extend_schema(responses=DeploymentOutput)
    def get(self, request, deployment_id: int):
        deployment = selectors.deployment_get_for_user(user=request.user, deployment_id=deployment_id)
        return Response(DeploymentOutput(deployment).data)

    @extend_schema(responses={204: None})
    def delete(self, request, deployment_id: int):
        deployment = selectors.deployment_get_for_user(user=request.user, deployment_id=deployment_id,
                                                       min_role=Role.OWNER)
        services.deployment_delete(deployment=deployment)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyOutput(serializers.ModelSerializer):
    revoked = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "deployment", "name", "prefix", "rate", "created_at", "last_used_at",
                  "revoked", "revoked_at"]


class ApiKeyCreatedOutput(ApiKeyOutput):
    key = serializers.CharField(help_text="The secret; shown only in this response.")

    class Meta(ApiKeyOutput.Meta):
        fields = [*ApiKeyOutput.Meta.fields, "key"]


class ApiKeyListCreateApi(APIView):
    @extend_schema_serializer(component_name="ApiKeyCreateInput")
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
        rate = serializers.CharField(max_length=32, required=False, default="", allow_blank=True,
                                     help_text="throttle rate for this key, e.g. '120/min' "
                                               "(default TESSERA_PREDICT_RATE)")

    @extend_schema(responses=ApiKeyOutput(many=True))
    def get(self, request, deployment_id: int):
        deployment = selectors.deployment_get_for_user(user=request.user, deployment_id=deployment_id,
                                                       min_role=Role.OWNER)
        return Response(ApiKeyOutput(selectors.api_key_list(deployment=deployment), many=True).data)

    @extend_schema(request=Input, responses={201: ApiKeyCreatedOutput})
    def post(self, request, deployment_id: int):
        deployment = selectors.deployment_get_for_user(user=request.user, deployment_id=deployment_id,
                                                       min_role=Role.OWNER)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        key, token = api_keys.api_key_create(deployment=deployment, user=request.user,
                                             **data.validated_data)
        key.key = token
        return Response(ApiKeyCreatedOutput(key).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(APIView):
    @extend_schema(responses={204: None}, description="Revoke the key (it stays listed).")
    def delete(self, request, deployment_id: int, key_id: int):
        deployment = selectors.deployment_get_for_user(user=request.user, deployment_id=deployment_id,
                                                       min_role=Role.OWNER)
        api_keys.api_key_revoke(key=selectors.api_key_get(deployment=deployment, key_id=key_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _flag(request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None and hasattr(request.data, "get"):
        value = request.data.get(name)
    return value is not None and truthy(value)


class PredictionOutput(serializers.Serializer):
    class Prediction(serializers.Serializer):
        class_id = serializers.IntegerField(allow_null=True, help_text="the project's LabelClass id")
        label = serializers.IntegerField(help_text="model label (LabelClass.index + 1)")
        class_name = serializers.CharField()
        rle = serializers.DictField(help_text="COCO compressed RLE {size: [H, W], counts}")
        area = serializers.IntegerField()
        polygons = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                         required=False)

    width = serializers.IntegerField()
    height = serializers.IntegerField()
    predictions = Prediction(many=True)
    png = serializers.CharField(required=False, help_text="base64 palette PNG of the class map")
    timing_ms = serializers.DictField(help_text="{total: server time, inference: worker time}")


class DeploymentPredictApi(APIView):
    """Segment one image (`image`) or several (`images`): multipart files, or JSON base64.
    Callers: `Authorization: Bearer <api-key>` of this deployment, or project members
    (annotator or owner) with their session/token for the try-it panel."""

    authentication_classes = [ApiKeyAuthentication, SessionAuthentication, ExpiringTokenAuthentication]
    permission_classes = [AllowAny]  # the view decides: this deployment's key, or a member
    throttle_classes = [PredictRateThrottle]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        parameters=[OpenApiParameter("polygons", bool, description="add outer polygons"),
                    OpenApiParameter("png", bool, description="add a palette PNG of the class map")],
        request={"multipart/form-data": {"type": "object", "properties": {
                     "image": {"type": "string", "format": "binary"},
                     "images": {"type": "array", "items": {"type": "string", "format": "binary"}}}},
                 "application/json": {"type": "object", "properties": {
                     "image": {"type": "string", "description": "base64"},
                     "images": {"type": "array", "items": {"type": "string"}}}}},
        responses={200: PredictionOutput})
    def post(self, request, deployment_id: int):
        with predict.predict_in_flight(deployment_id):
            deployment = self._deployment(request, deployment_id)
            images, single = self._images(request)
            results = predict.deployment_predict(deployment=deployment, images=images,
                                                  polygons=_flag(request, "polygons"),
                                                  png=_flag(request, "png"))
        return Response(results[0] if single else {"results": results})

    def initial(self, request, *args, **kwargs):
        self._started = time.perf_counter()
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        """Every answer, errors included, counts for the deployment's metrics."""
        started = getattr(self, "_started", None)
        if started is not None:
            metrics.prediction_observe(deployment_id=kwargs["deployment_id"], status=response.status_code,
                                       seconds=time.perf_counter() - started)
        return super().finalize_response(request, response, *args, **kwargs)

    def _deployment(self, request, deployment_id: int) -> Deployment:
        if isinstance(request.auth, ApiKey):
            if request.auth.deployment_id != deployment_id:
                # Same answer as for an unknown id: a key does not reveal other deployments.
                raise NotFoundError("Deployment not found for this API key.")
            return request.auth.deployment
        if request.user and request.user.is_authenticated:
            return selectors.deployment_get_for_user(user=request.user, deployment_id=deployment_id,
                                                     min_role=Role.ANNOTATOR)
        raise exceptions.NotAuthenticated("An API key is needed: 'Authorization: Bearer <api-key>'.")

    def _images(self, request) -> tuple[list[predict.PredictImage], bool]:
        max_images = setting("TESSERA_PREDICT_MAX_IMAGES", 16, int)
        max_bytes = setting("TESSERA_PREDICT_MAX_IMAGE_BYTES", 20 * 1024 * 1024, int)
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > max_images * (max_bytes * 4 // 3 + 1024) + 65536:
            raise ApplicationError(f"The request is {length} bytes; at most {max_images} images of "
                                   f"{max_bytes} bytes are accepted.", code="request_too_large",
                                   status_code=413)
        raw: list[bytes] = []
        files = request.FILES.getlist("image") + request.FILES.getlist("images")
        single = bool(request.FILES.getlist("image")) and not request.FILES.getlist("images")
        if len(files) > max_images:
            raise self._too_many(len(files), max_images)
        for index, upload in enumerate(files):
            if upload.size > max_bytes:
                raise ApplicationError(f"Image {index}: the file is {upload.size} bytes; the limit "
                                       f"is {max_bytes} bytes.", code="file_too_large",
                                       status_code=413, details={"image": index})
            raw.append(upload.read())
        if not files and isinstance(request.data, dict):
            if "images" in request.data:
                values = request.data["images"]
                if not isinstance(values, list):
                    raise ApplicationError("`images` must be a list of base64 strings.",
                                           code="invalid_image")
                single = False
            elif "image" in request.data:
                values, single = [request.data["image"]], True
            else:
                values = []
            if len(values) > max_images:
                raise self._too_many(len(values), max_images)
            raw = [predict.decode_base64_image(v, i) for i, v in enumerate(values)]
        return [predict.predict_image_check(data=data, index=i) for i, data in enumerate(raw)], single

    @staticmethod
    def _too_many(count: int, limit: int) -> ApplicationError:
        return ApplicationError(f"{count} images in one request; the limit is {limit}.",
                                code="too_many_images", status_code=413)


# --- artifact exports ----------------------------------------------------------------------------
class _FormatParamNegotiation(DefaultContentNegotiation):
    """`?format=` names the export format here, not a DRF renderer (DRF would answer 404
    for `format=onnx`): errors are JSON, the file is a FileResponse."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ArtifactExportOutput(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()
    job = JobOutput(allow_null=True)

    class Meta:
        model = ArtifactExport
        fields = ["id", "artifact", "format", "status", "size_bytes", "error", "created_at",
                  "finished_at", "download_url", "job"]

    def get_download_url(self, export: ArtifactExport) -> str | None:
        if export.status != ArtifactExport.Status.READY:
            return None
        return f"/api/v1/artifacts/{export.artifact_id}/export/?format={export.format}"


def _export_exists(*, artifact, format: str, rebuild: bool) -> bool:
    """Whether answering needs no build: the export exists and is not to be rebuilt."""
    export = ArtifactExport.objects.filter(artifact=artifact, format=format).first()
    return export is not None and not (rebuild and export.status == ArtifactExport.Status.FAILED)


class ArtifactExportApi(APIView):
    content_negotiation_class = _FormatParamNegotiation
    renderer_classes = [JSONRenderer]

    @extend_schema_serializer(component_name="ArtifactExportParams")
    class Params(serializers.Serializer):
        format = serializers.ChoiceField(choices=ArtifactExport.Format.choices)
        rebuild = serializers.BooleanField(default=False, help_text="retry a failed build")

    @extend_schema(parameters=[Params], responses={
        (200, "application/octet-stream"): bytes, 202: ArtifactExportOutput},
        description="The export file. The first request starts a build on the default queue "
                    "and answers 202 with its job; later requests get the cached file.")
    def get(self, request, artifact_id: int):
        artifact = artifact_get_for_user(user=request.user, artifact_id=artifact_id)
        params = self.Params(data=request.query_params)
        params.is_valid(raise_exception=True)
        if not _export_exists(artifact=artifact, **params.validated_data):
            # Building writes files and takes a worker: annotators and owners only; a
            # viewer downloads what is built.
            require_role(user=request.user, project_id=artifact.project_id, min_role=Role.ANNOTATOR)
        export = exports.artifact_export_get_or_start(artifact=artifact, user=request.user,
                                                       **params.validated_data)
        if export.status == ArtifactExport.Status.FAILED:
            raise ApplicationError(f"The {export.format} export failed: {export.error}",
                                   code="export_failed", status_code=422,
                                   details={"hint": "add rebuild=true to try again"})
        if export.status == ArtifactExport.Status.BUILDING:
            return Response(ArtifactExportOutput(export).data, status=status.HTTP_202_ACCEPTED)
        if not default_storage.exists(export.storage_name):
            raise NotFoundError("The export file is missing from storage.")
        filename = f"artifact{artifact.pk}-{exports.EXPORT_FILENAMES[export.format]}"
        response = FileResponse(default_storage.open(export.storage_name, "rb"), filename=filename,
                                as_attachment=True, content_type="application/octet-stream")
        response["Cache-Control"] = "private, max-age=3600"
        return response


class ArtifactExportsApi(APIView):
    @extend_schema_serializer(component_name="ArtifactReportInput")
    class Input(serializers.Serializer):
        formats = serializers.ListField(child=serializers.CharField(), required=False,
                                        default=list(exports.REPORT_FORMATS))
        prune_ratio = serializers.FloatField(required=False, default=0.3)

    @extend_schema(responses=dict[str, Any], description=(
        "Built export files, and the latest export report: per format size, speed and "
        "mIoU delta against eager PyTorch on the validation images."))
    def get(self, request, artifact_id: int):
        artifact = artifact_get_for_user(user=request.user, artifact_id=artifact_id)
        job = selectors.artifact_report_latest(artifact=artifact)
        report = job.result if job is not None and job.status == job.Status.SUCCEEDED else None
        return Response({
            "exports": ArtifactExportOutput(selectors.artifact_export_list(artifact=artifact),
                                            many=True).data,
            "report": report,
            "report_job": JobOutput(job).data if job is not None else None,
        })

    @extend_schema(request=Input, responses={202: JobOutput},
                   description="Start (re)measuring the export formats; poll the job.")
    def post(self, request, artifact_id: int):
        artifact = artifact_get_for_user(user=request.user, artifact_id=artifact_id,
                                         min_role=Role.ANNOTATOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        job = exports.artifact_report_start(artifact=artifact, user=request.user, **data.validated_data)
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ArtifactPruneApi(APIView):
    @extend_schema_serializer(component_name="ArtifactPruneInput")
    class Input(serializers.Serializer):
        ratio = serializers.FloatField(help_text="fraction of Linear/Conv weights set to zero")

    @extend_schema(request=Input, responses={202: JobOutput}, description=(
        "Prune into a new artifact (its meta.pruning has sparsity and the mIoU delta); the "
        "job's result names it."))
    def post(self, request, artifact_id: int):
        artifact = artifact_get_for_user(user=request.user, artifact_id=artifact_id,
                                         min_role=Role.ANNOTATOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        job = exports.artifact_prune_start(artifact=artifact, user=request.user,
                                            ratio=data.validated_data["ratio"])
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)

