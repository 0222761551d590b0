"""HTTP API for masks (current set, revisions, restore) and dataset import/export.

Views check access through projects.selectors and call annotator.services; they hold
no logic of their own."""
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator import selectors, services
from annotator.formats import EXPORT_FORMATS, IMPORT_FORMATS
from annotator.models import MaskRevision, MaskSet
from common.errors import ApplicationError, NotFoundError
from common.fields import IdField
from common.pagination import PageNumberPagination
from projects.apis import JobOutput
from projects.models import Asset, Role
from projects.selectors import asset_get_for_user, project_get_for_user


class RleField(serializers.Serializer):
    size = serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2,
                                 help_text="[height, width]")
    counts = serializers.CharField(help_text="COCO compressed RLE string (column-major runs)")


class MaskItem(serializers.Serializer):
    class_id = IdField()
    rle = RleField()


def _user_name(user) -> str | None:
    return user.username if user is not None else None


def mask_set_body(asset: Asset, mask_set: MaskSet | None) -> dict:
    revision = mask_set.revision if mask_set else None
    return {
        "asset_id": asset.id, "width": asset.width, "height": asset.height,
        "status": asset.status,
        "revision": revision.number if revision else None,
        "revision_id": revision.id if revision else None,
        "updated_by": _user_name(mask_set.updated_by) if mask_set else None,
        "updated_at": mask_set.updated_at if mask_set else None,
        "masks": revision.instances if revision else [],
    }


class MaskSetOutput(serializers.Serializer):
    asset_id = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    status = serializers.CharField()
    revision = serializers.IntegerField(allow_null=True, help_text="revision number (1, 2, ...)")
    revision_id = serializers.IntegerField(allow_null=True)
    updated_by = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    masks = MaskItem(many=True)


class AssetMasksApi(APIView):
    parser_classes = [JSONParser]

    class Input(serializers.Serializer):
        # Validated by the service (every entry, all errors at once), not here.
        masks = serializers.ListField(child=serializers.JSONField(), allow_empty=True)
        base_revision = IdField(required=False, allow_null=True, min_value=0,
                                help_text="revision edited; 409 if it is not current")

    @extend_schema(responses=MaskSetOutput)
    def get(self, request, asset_id: int):
        asset = asset_get_for_user(user=request.user, asset_id=asset_id)
        return Response(mask_set_body(asset, selectors.mask_set_get(asset=asset)))

    @extend_schema(request=Input, responses=MaskSetOutput)
    def put(self, request, asset_id: int):
        asset = asset_get_for_user(user=request.user, asset_id=asset_id, min_role=Role.ANNOTATOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        mask_set = services.mask_set_replace(asset=asset, user=request.user,
                                             masks=data.validated_data["masks"],
                                             base_revision=data.validated_data.get("base_revision"))
        return Response(mask_set_body(asset, mask_set))


class RevisionOutput(serializers.ModelSerializer):
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = MaskRevision
        fields = ["id", "number", "instance_count", "source", "restored_from", "created_by",
                  "created_at"]

    def get_created_by(self, revision: MaskRevision) -> str | None:
        return _user_name(revision.created_by)


class RevisionDetailOutput(RevisionOutput):
    masks = MaskItem(many=True, source="instances")

    class Meta(RevisionOutput.Meta):
        fields = [*RevisionOutput.Meta.fields, "masks"]


class MaskRevisionListApi(APIView):
    pagination_class = PageNumberPagination  # the list is paginated (schema)
    @extend_schema(responses=RevisionOutput(many=True))
    def get(self, request, asset_id: int):
        asset = asset_get_for_user(user=request.user, asset_id=asset_id)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(selectors.mask_revision_list(asset=asset), request)
        return paginator.get_paginated_response(RevisionOutput(page, many=True).data)


class MaskRevisionDetailApi(APIView):
    @extend_schema(responses=RevisionDetailOutput)
    def get(self, request, asset_id: int, revision_id: int):
        asset = asset_get_for_user(user=request.user, asset_id=asset_id)
        revision = selectors.mask_revision_get(asset=asset, revision_id=revision_id)
        return Response(RevisionDetailOutput(revision).data)


class MaskRevisionRestoreApi(APIView):
    @extend_schema(request=None, responses=MaskSetOutput)
    def post(self, request, asset_id: int, revision_id: int):
        asset = asset_get_for_user(user=request.user, asset_id=asset_id, min_role=Role.ANNOTATOR)
        revision = selectors.mask_revision_get(asset=asset, revision_id=revision_id)
        mask_set = services.mask_revision_restore(asset=asset, revision=revision, user=request.user)
        return Response(mask_set_body(asset, mask_set))


class ProjectImportApi(APIView):
    parser_classes = [MultiPartParser]

    class Input(serializers.Serializer):
        file = serializers.FileField(help_text="COCO JSON, LabelMe JSON, or a zip with images")
        format = serializers.ChoiceField(choices=IMPORT_FORMATS, required=False, allow_null=True,
                                         default=None, help_text="Omit to detect it from the file.")
        on_error = serializers.ChoiceField(
            choices=services.ON_ERROR, default="refuse",
            help_text="refuse: any error refuses the whole import; skip: import the rest, "
                      "and list what was left out.")
        crowd_as_ignore = serializers.BooleanField(
            required=False, default=False,
            help_text="COCO: crowd regions (iscrowd 1) go to the project's ignore class")

    @extend_schema(request={"multipart/form-data": Input}, responses={202: JobOutput})
    def post(self, request, project_id: int):
        project = project_get_for_user(user=request.user, project_id=project_id,
                                       min_role=Role.ANNOTATOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        if upload.size and upload.size > settings.TESSERA_MAX_UPLOAD_BYTES:
            raise ApplicationError(f"The file is {upload.size} bytes; the limit is "
                                   f"{settings.TESSERA_MAX_UPLOAD_BYTES}.", code="file_too_large")
        job = services.import_start(project=project, user=request.user, name=upload.name or "upload",
                                    data=upload, format=data.validated_data["format"] or None,
                                    on_error=data.validated_data["on_error"],
                                    crowd_as_ignore=data.validated_data["crowd_as_ignore"])
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ProjectImportS3Api(APIView):
    class Input(serializers.Serializer):
        bucket = serializers.CharField(max_length=63, help_text="one of the server's import buckets")
        prefix = serializers.CharField(max_length=1024, allow_blank=True, default="",
                                       help_text="the folder (key prefix) that holds the dataset")
        format = serializers.ChoiceField(choices=IMPORT_FORMATS)
        crowd_as_ignore = serializers.BooleanField(
            required=False, default=False,
            help_text="COCO: crowd regions (iscrowd 1) go to the project's ignore class")

    @extend_schema(request=Input, responses={202: JobOutput})
    def post(self, request, project_id: int):
        project = project_get_for_user(user=request.user, project_id=project_id,
                                       min_role=Role.ANNOTATOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.import_start_s3(project=project, user=request.user, **data.validated_data)
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class _JsonOnlyNegotiation(DefaultContentNegotiation):
    """`?format=` names the dataset format here, not a DRF renderer (DRF would answer
    404 for `format=coco`): errors are always JSON, the zip is a StreamingHttpResponse."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ProjectExportApi(APIView):
    content_negotiation_class = _JsonOnlyNegotiation
    renderer_classes = [JSONRenderer]

    class Params(serializers.Serializer):
        format = serializers.ChoiceField(choices=EXPORT_FORMATS)
        include_unlabeled = serializers.BooleanField(default=False)
        images = serializers.BooleanField(default=True, help_text="put the image files in the zip")
        delivery = serializers.ChoiceField(choices=["stream", "job"], default="stream", help_text=(
            "stream: the zip now, streamed; job: build it in a background job (202) and "
            "download it from /api/v1/jobs/{id}/download/"))

    @extend_schema(parameters=[Params], responses={
        (200, "application/zip"): bytes, 202: JobOutput},
        description="Dataset export as a zip (COCO RLE, LabelMe, or PNG index masks) "
                    "with the train/val/test split.")
    def get(self, request, project_id: int):
        project = project_get_for_user(user=request.user, project_id=project_id)
        params = self.Params(data=request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        if p["delivery"] == "job":
            job = services.export_start(project=project, user=request.user, format=p["format"],
                                        include_unlabeled=p["include_unlabeled"],
                                        include_images=p["images"])
            return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)
        chunks = services.export_stream(project=project, format=p["format"],
                                        include_unlabeled=p["include_unlabeled"],
                                        include_images=p["images"])
        response = StreamingHttpResponse(chunks, content_type="application/zip")
        response["Content-Disposition"] = (
            f'attachment; filename="project{project.id}-{p["format"]}.zip"')
        return response




class AssetOverlayApi(APIView):
    def get(self, request, asset_id: int):
        """The asset's masks as a transparent PNG the size of its thumbnail, for grids."""
        asset = asset_get_for_user(user=request.user, asset_id=asset_id)
        png = selectors.mask_overlay_png(asset=asset)
        if png is None:
            raise NotFoundError("This asset has no masks.")
        response = HttpResponse(png, content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"  # the URL names the revision
        return response
