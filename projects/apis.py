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
from common.files import file_response
from common.pagination import PageNumberPagination
from projects import selectors, services
from projects.models import Asset, Job, LabelClass, Membership, Project, Role, Video


class JobOutput(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "project_id", "kind", "status", "progress", "message", "params", "result",
                  "errors", "download_url", "created_at", "finished_at"]

    def get_download_url(self, job: Job) -> str | None:
        return f"/api/v1/jobs/{job.id}/download/" if job.file else None


class ProjectOutput(serializers.ModelSerializer):
    role = serializers.CharField(read_only=True)
    asset_count = serializers.IntegerField(read_only=True, required=False)
    status_counts = serializers.SerializerMethodField()
    cover_url = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "type", "description", "role", "asset_count", "status_counts",
                  "cover_url", "created_at", "updated_at"]

    def get_status_counts(self, project: Project) -> dict[str, int] | None:
        return selectors.project_status_counts(project) if hasattr(project, "count_labeled") else None

    def get_cover_url(self, project: Project) -> str | None:
        cover = getattr(project, "cover_asset_id", None)
        return f"/api/v1/assets/{cover}/thumbnail/" if cover else None


class ProjectListCreateApi(APIView):
    pagination_class = PageNumberPagination  # the list is paginated (schema)
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        type = serializers.ChoiceField(choices=Project.Type.choices, default=Project.Type.SEGMENTATION)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    class Filters(serializers.Serializer):
        search = serializers.CharField(required=False, max_length=200)
        sort = serializers.ChoiceField(choices=list(selectors.PROJECT_SORTS), required=False,
                                       default="newest")

    @extend_schema(parameters=[Filters], responses=ProjectOutput(many=True))
    def get(self, request):
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            selectors.project_list_for_user(user=request.user, **filters.validated_data), request)
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

    class DeleteInput(serializers.Serializer):
        confirm = serializers.CharField(help_text="The project's name, typed again.")

    @extend_schema(request=DeleteInput, responses={202: JobOutput})
    def delete(self, request, project_id: int):
        """Start deleting the project (owner only): it disappears at once and a job
        (kind project_delete) removes its data; poll /jobs/{id}/ for progress."""
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.OWNER)
        data = self.DeleteInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.project_delete_start(project=project, user=request.user,
                                            confirm_name=data.validated_data["confirm"])
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


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


class MemberNewUserApi(APIView):
    class Input(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        role = serializers.ChoiceField(choices=Role.choices)

    class Output(serializers.Serializer):
        member = MemberOutput()
        one_time_password = serializers.CharField(
            help_text="Shown once: the user logs in with it and must choose their own password.")

    @extend_schema(request=Input, responses={201: Output})
    def post(self, request, project_id: int):
        """Create a local account with a one-time password and add it to the project."""
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.OWNER)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        membership, password = services.member_create_user(project=project, **data.validated_data)
        return Response(self.Output({"member": membership, "one_time_password": password}).data,
                        status=status.HTTP_201_CREATED)


class MemberDetailApi(APIView):
    class Input(serializers.Serializer):
        role = serializers.ChoiceField(choices=Role.choices)

    def _membership(self, request, project_id: int, member_id: int) -> Membership:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.OWNER)
        return selectors.member_get(project=project, member_id=member_id)

    @extend_schema(request=Input, responses=MemberOutput)
    def patch(self, request, project_id: int, member_id: int):
        membership = self._membership(request, project_id, member_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_role_set(membership=membership, **data.validated_data)
        return Response(MemberOutput(membership).data)

    def delete(self, request, project_id: int, member_id: int):
        services.member_remove(membership=self._membership(request, project_id, member_id))
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


class AssetFilterInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=Asset.Status.choices, required=False)
    split = serializers.ChoiceField(choices=Asset.Split.choices, required=False)
    video = IdField(required=False)
    search = serializers.CharField(required=False)


class AssetOutput(serializers.ModelSerializer):
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    overlay_url = serializers.SerializerMethodField()
    video_id = serializers.IntegerField(read_only=True, allow_null=True)
    reviewed_by = serializers.CharField(source="reviewed_by.username", read_only=True, default=None)

    class Meta:
        model = Asset
        fields = ["id", "project_id", "name", "width", "height", "status", "split", "split_locked",
                  "review_comment", "reviewed_by", "reviewed_at", "sha256",
                  "video_id", "frame_index", "timestamp_s", "file_url", "thumbnail_url",
                  "overlay_url", "created_at", "updated_at"]

    def get_overlay_url(self, asset: Asset) -> str | None:
        """The masks drawn at thumbnail size; the revision in the URL busts caches."""
        revision = getattr(asset, "mask_revision", None)
        return f"/api/v1/assets/{asset.id}/overlay/?rev={revision}" if revision else None

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
    pagination_class = PageNumberPagination  # the list is paginated (schema)
    parser_classes = [MultiPartParser]

    Filters = AssetFilterInput

    @extend_schema(parameters=[Filters], responses=AssetOutput(many=True))
    def get(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            selectors.asset_list(project=project, filters=filters.validated_data)
            .select_related("reviewed_by"), request
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
        asset = services.asset_update(asset=asset, user=request.user, data=data.validated_data)
        return Response(AssetOutput(asset).data)

    def delete(self, request, asset_id: int):
        asset = selectors.asset_get_for_user(user=request.user, asset_id=asset_id, min_role=Role.OWNER)
        services.asset_delete(asset=asset)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _file_response(field, filename: str) -> FileResponse:
    if not field:
        raise NotFoundError("This file has not been generated yet.")
    response = file_response(field.open("rb"), filename=filename)
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


class JobDetailApi(APIView):
    @extend_schema(responses=JobOutput)
    def get(self, request, job_id: int):
        return Response(JobOutput(selectors.job_get_for_user(user=request.user, job_id=job_id)).data)


class ProjectJobListApi(APIView):
    """GET /projects/{id}/jobs/: the project's jobs, newest first (a stuck import shows
    here with its status, message and attempts, and can be cancelled)."""

    class Filters(serializers.Serializer):
        kind = serializers.CharField(required=False, max_length=32)
        active = serializers.ChoiceField(choices=["true", "false"], required=False,
                                         help_text="true: queued or running; false: finished")

    @extend_schema(parameters=[Filters], responses=JobOutput(many=True))
    def get(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = PageNumberPagination()
        params = filters.validated_data
        if "active" in params:
            params["active"] = params["active"] == "true"
        page = paginator.paginate_queryset(selectors.job_list(project=project, filters=params), request)
        return paginator.get_paginated_response(JobOutput(page, many=True).data)


class JobCancelApi(APIView):
    """POST /jobs/{id}/cancel/: a queued or running job (a stuck one too) fails as
    cancelled. Annotators and owners of the job's project; 409 when it is over."""

    @extend_schema(request=None, responses=JobOutput)
    def post(self, request, job_id: int):
        job = selectors.job_get_for_user(user=request.user, job_id=job_id, min_role=Role.ANNOTATOR)
        return Response(JobOutput(services.job_cancel(job=job, user=request.user)).data)


class JobDownloadApi(APIView):
    def get(self, request, job_id: int):
        job = selectors.job_get_for_user(user=request.user, job_id=job_id)
        return _file_response(job.file, job.file.name.rsplit("/", 1)[-1] if job.file else "")


# --- splits, bulk actions, review --------------------------------------------------------
class AssetSummaryApi(APIView):
    @extend_schema(responses=dict)
    def get(self, request, project_id: int):
        """Assets per split (all / labelled) and per status, how many are hand-placed,
        and whether the val split is big enough to train (``validation``)."""
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        return Response(selectors.asset_summary(project=project))


class AssetBulkApi(APIView):
    class Input(serializers.Serializer):
        action = serializers.ChoiceField(choices=["delete", "set_split", "set_status"])
        ids = serializers.ListField(child=IdField(), required=False, max_length=10_000)
        filter = AssetFilterInput(required=False, help_text="Instead of ids: every asset matching.")
        split = serializers.ChoiceField(choices=Asset.Split.choices, required=False)
        status = serializers.ChoiceField(choices=Asset.Status.choices, required=False)

    @extend_schema(request=Input, responses=dict)
    def post(self, request, project_id: int):
        """Delete (owner), move to a split or set the status (annotator) of the assets
        named by ``ids`` or matching ``filter``."""
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.ANNOTATOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        action = body["action"]
        if action == "delete":
            selectors.require_role(user=request.user, project_id=project.id, min_role=Role.OWNER)
        asset_ids = self._asset_ids(project, body)
        if action == "delete":
            count = services.assets_delete(asset_ids=asset_ids)
        else:
            field = "split" if action == "set_split" else "status"
            if field not in body:
                raise ApplicationError(f"{action} needs '{field}'.", details={field: ["Required."]})
            count = services.assets_bulk_update(asset_ids=asset_ids, user=request.user,
                                                **{field: body[field]})
        return Response({"action": action, "count": count})

    @staticmethod
    def _asset_ids(project: Project, body: dict) -> list[int]:
        if ("ids" in body) == ("filter" in body):
            raise ApplicationError("Send either 'ids' or 'filter'.", code="invalid",
                                   details={"ids": ["Send ids or a filter, not both."]})
        if "filter" in body:
            return list(selectors.asset_list(project=project, filters=body["filter"])
                        .values_list("id", flat=True))
        wanted = set(body["ids"])
        found = set(Asset.objects.filter(project=project, id__in=wanted).values_list("id", flat=True))
        if wanted - found:
            raise NotFoundError("Some assets are not in this project.",
                                details={"ids": sorted(wanted - found)[:50]})
        return sorted(found)


class AutoSplitApi(APIView):
    class Input(serializers.Serializer):
        train = serializers.FloatField(min_value=0)
        val = serializers.FloatField(min_value=0)
        test = serializers.FloatField(min_value=0, default=0.0)
        seed = serializers.IntegerField(default=0, min_value=0, max_value=2**31 - 1)
        include_locked = serializers.BooleanField(
            default=False, help_text="Also re-deal the assets someone placed by hand.")

    @extend_schema(request=Input, responses=dict)
    def post(self, request, project_id: int):
        """Deal the assets into train/val/test by ratios, stratified by class presence
        (owner). Hand-placed assets stay unless include_locked."""
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.OWNER)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        result = services.assets_auto_split(
            project=project, ratios={s: body[s] for s in Asset.Split.values}, seed=body["seed"],
            include_locked=body["include_locked"])
        return Response({**result, "summary": selectors.asset_summary(project=project)})


class AssetNextApi(APIView):
    class Input(serializers.Serializer):
        purpose = serializers.ChoiceField(choices=list(selectors.NEXT_STATUSES))
        after = IdField(required=False, help_text="Start after this asset id (then wrap around).")

    @extend_schema(request=Input, responses=dict)
    def post(self, request, project_id: int):
        """The next asset to label or review that nobody else has open; it is marked open
        by you (the annotator and review pages keep it so through ws /ws/assets/{id}/presence/)."""
        project = selectors.project_get_for_user(user=request.user, project_id=project_id,
                                                 min_role=Role.ANNOTATOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        asset = services.asset_next(project=project, user=request.user,
                                    purpose=data.validated_data["purpose"],
                                    after_id=data.validated_data.get("after", 0))
        return Response({"asset": AssetOutput(asset).data if asset else None})


class AssetReviewApi(APIView):
    class Input(serializers.Serializer):
        decision = serializers.ChoiceField(choices=[Asset.Status.REVIEWED, Asset.Status.REJECTED])
        comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    @extend_schema(request=Input, responses=AssetOutput)
    def post(self, request, asset_id: int):
        """Accept (reviewed) or reject (with a comment) a labelled asset (annotator)."""
        asset = selectors.asset_get_for_user(user=request.user, asset_id=asset_id,
                                             min_role=Role.ANNOTATOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        asset = services.asset_review(asset=asset, user=request.user, **data.validated_data)
        return Response(AssetOutput(asset).data)
