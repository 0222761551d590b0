"""HTTP API for projects, members, classes, assets, videos and jobs.

One view per resource action; input/output serializers are nested; logic lives in
services (writes) and selectors (reads and permission checks)."""
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import ApplicationError, NotFoundError
from common.fields import IdField
from common.pagination import PageNumberPagination
from projects import selectors, services
from projects.models import Asset, Job, LabelClass, Membership, Project, Role, Video


class ProjectOutput(serializers.ModelSerializer):
    role = serializers.CharField(read_only=True)
    asset_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Project
        fields = ["id", "name", "type", "description", "role", "asset_count", "created_at"]


class ProjectListCreateApi(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        type = serializers.ChoiceField(choices=Project.Type.choices, default=Project.Type.SEGMENTATION)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(responses=ProjectOutput(many=True))
    def get(self, request):
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(selectors.project_list_for_user(user=request.user), request)
        return paginator.get_paginated_response(ProjectOutput(page, many=True).data)

    @extend_schema(request=Input, responses={201: ProjectOutput})
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(user=request.user, **data.validated_data)
        project.role, project.asset_count = Role.OWNER, 0
        return Response(ProjectOutput(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(responses=ProjectOutput)
    def get(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        project.asset_count = project.assets.count()
        return Response(ProjectOutput(project).data)

    @extend_schema(request=Input, responses=ProjectOutput)
    def patch(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.OWNER)
        data = self.Input(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project = services.project_update(project=project, data=data.validated_data)
        project.role, project.asset_count = Role.OWNER, project.assets.count()
        return Response(ProjectOutput(project).data)

    def delete(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.OWNER)
        services.project_delete(project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberOutput(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]


class MemberListCreateApi(APIView):
    class Input(serializers.Serializer):
        username = serializers.CharField()
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(responses=MemberOutput(many=True))
    def get(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        return Response(MemberOutput(selectors.member_list(project=project), many=True).data)

    @extend_schema(request=Input, responses={201: MemberOutput})
    def post(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.OWNER)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_set(project=project, **data.validated_data)
        return Response(MemberOutput(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(APIView):
    def delete(self, request, project_id: int, member_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.OWNER)
        membership = selectors.member_list(project=project).filter(pk=member_id).first()
        if membership is None:
            return Response(status=status.HTTP_404_NOT_FOUND)
        services.member_remove(membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


IGNORE_HELP = ("The project's void / ignore class (at most one): its pixels are left out of "
               "training and evaluation (label 255).")


class ClassOutput(serializers.ModelSerializer):
    class Meta:
        model = LabelClass
        fields = ["id", "name", "color", "index", "is_ignore"]


class ClassListCreateApi(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        color = serializers.CharField(max_length=7, required=False)
        is_ignore = serializers.BooleanField(required=False, help_text=IGNORE_HELP)

    @extend_schema(responses=ClassOutput(many=True))
    def get(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        return Response(ClassOutput(selectors.class_list(project=project), many=True).data)

    @extend_schema(request=Input, responses={201: ClassOutput})
    def post(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.OWNER)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        label_class = services.label_class_create(project=project, **data.validated_data)
        return Response(ClassOutput(label_class).data, status=status.HTTP_201_CREATED)


class ClassDetailApi(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100, required=False)
        color = serializers.CharField(max_length=7, required=False)
        is_ignore = serializers.BooleanField(required=False, help_text=IGNORE_HELP)

    @extend_schema(request=Input, responses=ClassOutput)
    def patch(self, request, project_id: int, class_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.OWNER)
        label_class = selectors.label_class_get(project=project, class_id=class_id)
        data = self.Input(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        label_class = services.label_class_update(label_class=label_class, data=data.validated_data)
        return Response(ClassOutput(label_class).data)

    def delete(self, request, project_id: int, class_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.OWNER)
        services.label_class_delete(label_class=selectors.label_class_get(project=project, class_id=class_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AssetOutput(serializers.ModelSerializer):
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    video_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Asset
        fields = ["id", "project_id", "name", "width", "height", "status", "split", "sha256",
                  "video_id", "frame_index", "timestamp_s", "file_url", "thumbnail_url",
                  "created_at", "updated_at"]

    def get_file_url(self, asset: Asset) -> str:
        return f"/api/v1/assets/{asset.id}/file/"

    def get_thumbnail_url(self, asset: Asset) -> str | None:
        return f"/api/v1/assets/{asset.id}/thumbnail/" if asset.thumbnail else None


class VideoOutput(serializers.ModelSerializer):
    class Meta:
        model = Video
        fields = ["id", "name", "status", "progress", "frame_count", "fps", "duration_s", "error",
                  "created_at"]


class AssetListUploadApi(APIView):
    parser_classes = [MultiPartParser]

    class Filters(serializers.Serializer):
        status = serializers.ChoiceField(choices=Asset.Status.choices, required=False)
        split = serializers.ChoiceField(choices=Asset.Split.choices, required=False)
        video = IdField(required=False)
        search = serializers.CharField(required=False)

    @extend_schema(parameters=[Filters], responses=AssetOutput(many=True))
    def get(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            selectors.asset_list(project=project, filters=filters.validated_data), request
        )
        return paginator.get_paginated_response(AssetOutput(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": {"type": "object", "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        responses={201: dict, 207: dict},
    )
    def post(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.ANNOTATOR)
        files = request.FILES.getlist("files") or request.FILES.getlist("file")
        if not files:
            raise ApplicationError("Send one or more files in the multipart field 'files'.",
                                   code="no_files")
        result = services.assets_upload(project=project, user=request.user, files=files)
        body = {
            "created": AssetOutput(result.created, many=True).data,
            "duplicates": result.duplicates,
            "videos": VideoOutput(result.videos, many=True).data,
            "errors": result.errors,
        }
        if result.errors and not (result.created or result.videos or result.duplicates):
            code = status.HTTP_400_BAD_REQUEST
        elif result.errors:
            code = status.HTTP_207_MULTI_STATUS
        else:
            code = status.HTTP_201_CREATED
        return Response(body, status=code)


class AssetDetailApi(APIView):
    class Input(serializers.Serializer):
        status = serializers.ChoiceField(choices=Asset.Status.choices, required=False)
        split = serializers.ChoiceField(choices=Asset.Split.choices, required=False)

    @extend_schema(responses=AssetOutput)
    def get(self, request, asset_id: int):
        return Response(AssetOutput(selectors.asset_get_for_user(user=request.user, asset_id=asset_id)).data)

    @extend_schema(request=Input, responses=AssetOutput)
    def patch(self, request, asset_id: int):
        asset = selectors.asset_get_for_user(user=request.user, asset_id=asset_id,
                                             min_role=Role.ANNOTATOR)
        data = self.Input(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(AssetOutput(services.asset_update(asset=asset, data=data.validated_data)).data)

    def delete(self, request, asset_id: int):
        asset = selectors.asset_get_for_user(user=request.user, asset_id=asset_id, min_role=Role.OWNER)
        services.asset_delete(asset=asset)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _file_response(field, filename: str) -> FileResponse:
    if not field:
        raise NotFoundError("This file has not been generated yet.")
    response = FileResponse(field.open("rb"), filename=filename)
    response["Cache-Control"] = "private, max-age=3600"
    return response


class AssetFileApi(APIView):
    def get(self, request, asset_id: int):
        asset = selectors.asset_get_for_user(user=request.user, asset_id=asset_id)
        return _file_response(asset.file, asset.name)


class AssetThumbnailApi(APIView):
    def get(self, request, asset_id: int):
        asset = selectors.asset_get_for_user(user=request.user, asset_id=asset_id)
        return _file_response(asset.thumbnail, f"{asset.id}.jpg")


class VideoDetailApi(APIView):
    @extend_schema(responses=VideoOutput)
    def get(self, request, video_id: int):
        return Response(VideoOutput(selectors.video_get_for_user(user=request.user, video_id=video_id)).data)


class JobOutput(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "project_id", "kind", "status", "progress", "message", "params", "result",
                  "errors", "download_url", "created_at", "finished_at"]

    def get_download_url(self, job: Job) -> str | None:
        return f"/api/v1/jobs/{job.id}/download/" if job.file else None


class JobDetailApi(APIView):
    @extend_schema(responses=JobOutput)
    def get(self, request, job_id: int):
        return Response(JobOutput(selectors.job_get_for_user(user=request.user, job_id=job_id)).data)


class JobDownloadApi(APIView):
    def get(self, request, job_id: int):
        job = selectors.job_get_for_user(user=request.user, job_id=job_id)
        return _file_response(job.file, job.file.name.rsplit("/", 1)[-1] if job.file else "")
