"""IntelliBrush HTTP API: click-to-mask, the embedding for in-browser decoding, the ONNX
decoder, and per-project embedding precompute. Views are thin: validate, check the
member's role through ``projects.selectors``, call a service."""

from __future__ import annotations

import base64

import numpy as np
from django.http import FileResponse, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.formats import rle as rlelib
from common.errors import ApplicationError
from projects import selectors
from projects.models import Role

from . import clicks, conf, services
from . import selectors as intellibrush_selectors


class IntelliBrushRle(serializers.Serializer):
    size = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=2, max_length=2)
    counts = serializers.CharField()


class IntelliBrushApi(APIView):
    """POST /assets/{id}/intellibrush/: prompts in, the best mask (COCO RLE) out."""

    class IntelliBrushInput(serializers.Serializer):
        points = serializers.ListField(
            child=serializers.ListField(child=serializers.FloatField(), min_length=3, max_length=3),
            required=False,
            default=list,
            max_length=64,
            help_text="[[x, y, label], ...] in image pixels; label 1 include, 0 exclude.",
        )
        box = serializers.ListField(
            child=serializers.FloatField(), min_length=4, max_length=4, required=False,
            allow_null=True, default=None, help_text="[x0, y0, x1, y1] in image pixels.",
        )
        mask_input = serializers.CharField(
            required=False, allow_null=True, default=None,
            help_text="Base64 float16 low-res logits from a previous response's low_res_logits.",
        )
        previous_mask = IntelliBrushRle(required=False, allow_null=True, default=None)
        multimask = serializers.BooleanField(required=False, allow_null=True, default=None)
        return_logits = serializers.BooleanField(required=False, default=False)

    class IntelliBrushOutput(serializers.Serializer):
        rle = IntelliBrushRle()
        score = serializers.FloatField()
        method = serializers.ChoiceField(choices=["sam", "fallback"])
        model_type = serializers.CharField(allow_null=True)
        embedding_computed_on_demand = serializers.BooleanField()
        embedding_source = serializers.CharField(allow_null=True)
        hint = serializers.CharField(allow_null=True)
        low_res_logits = serializers.DictField(allow_null=True)
        decoder = serializers.ChoiceField(choices=["onnxruntime", "pytorch"], required=False,
                                          help_text="what decoded a SAM click")
        timing_ms = serializers.DictField()

    @extend_schema(request=IntelliBrushInput, responses=IntelliBrushOutput)
    def post(self, request, asset_id: int):
        asset = selectors.asset_get_for_user(user=request.user, asset_id=asset_id, min_role=Role.ANNOTATOR)
        data = self.IntelliBrushInput(data=request.data)
        data.is_valid(raise_exception=True)
        prompt = _prompt(data.validated_data, width=asset.width, height=asset.height)
        result = clicks.intellibrush_predict(
            asset=asset, prompt=prompt, return_logits=data.validated_data["return_logits"]
        )
        return Response(self.IntelliBrushOutput(result).data)


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError("Invalid input.", code="validation_error", details={field: [message]})


def _prompt(data: dict, *, width: int, height: int) -> clicks.Prompt:
    points = np.asarray(data["points"], np.float64).reshape(-1, 3)
    if len(points):
        if not np.isin(points[:, 2], (0, 1)).all():
            raise _invalid("points", "Each label must be 1 (include) or 0 (exclude).")
        if ((points[:, 0] < 0) | (points[:, 0] > width) | (points[:, 1] < 0) | (points[:, 1] > height)).any():
            raise _invalid("points", f"Points must lie inside the {width}x{height} image.")
    box = None
    if data["box"] is not None:
        box = np.asarray(data["box"], np.float64)
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise _invalid("box", f"Box must be [x0, y0, x1, y1] with x0<x1, y0<y1 inside {width}x{height}.")
    previous_mask = None
    if data["previous_mask"] is not None:
        rle = data["previous_mask"]
        try:  # the checked codec: runs must cover exactly H x W before pycocotools decodes
            previous_mask = rlelib.decode(rlelib.normalize(rle, height=height, width=width))
        except rlelib.RLEError as exc:
            raise _invalid("previous_mask", str(exc)) from None
        if not previous_mask.any():
            previous_mask = None  # an empty previous mask says nothing about the object
    mask_input = None
    if data["mask_input"]:
        try:
            raw = base64.b64decode(data["mask_input"], validate=True)
        except ValueError:
            raise _invalid("mask_input", "Not valid base64.") from None
        side = int(round((len(raw) // 2) ** 0.5))
        if side * side * 2 != len(raw):
            raise _invalid("mask_input", "Expected a square float16 array.")
        mask_input = np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(1, side, side)
    has_include = bool(len(points)) and bool((points[:, 2] == 1).any())
    if not (has_include or box is not None or mask_input is not None or previous_mask is not None):
        raise _invalid("points", "Give at least one include point, a box or a non-empty previous mask.")
    return clicks.Prompt(
        points=points[:, :2],
        labels=points[:, 2].astype(np.int64),
        box=box,
        mask_input=mask_input,
        previous_mask=previous_mask,
        multimask=data["multimask"],
    )


class AssetEmbeddingApi(APIView):
    """GET /assets/{id}/embedding/: the SAM embedding, for decoding clicks in the browser.

    ``?encoding=json`` (default): base64 fp16 plus the transform info and decoder URL.
    ``?encoding=binary``: the raw little-endian fp16 bytes; the same info in X-Sam-* headers.
    """

    @extend_schema(
        parameters=[OpenApiParameter("encoding", str, enum=["json", "binary"], required=False)],
        responses=inline_serializer(
            "EmbeddingOutput",
            {
                "model_type": serializers.CharField(),
                "embedding": serializers.CharField(),
                "transform": serializers.DictField(),
                "decoder_url": serializers.CharField(),
                "computed_on_demand": serializers.BooleanField(),
            },
        ),
    )
    def get(self, request, asset_id: int):
        asset = selectors.asset_get_for_user(user=request.user, asset_id=asset_id)
        lookup, decoder_url = clicks.embedding_payload(asset=asset)
        record = lookup.record
        raw = np.ascontiguousarray(record.embedding, dtype="<f2").tobytes()
        info = record.transform_info()
        if request.query_params.get("encoding") == "binary":
            response = HttpResponse(raw, content_type="application/octet-stream")
            response["X-Sam-Model-Type"] = record.model_type
            response["X-Sam-Embedding-Shape"] = ",".join(str(v) for v in record.embedding.shape)
            response["X-Sam-Original-Size"] = ",".join(str(v) for v in record.original_size)
            response["X-Sam-Input-Size"] = ",".join(str(v) for v in record.input_size)
            response["X-Sam-Image-Size"] = str(record.image_size)
            response["X-Sam-Decoder-Url"] = decoder_url
            response["X-Sam-Computed-On-Demand"] = str(lookup.computed_on_demand).lower()
            response["Cache-Control"] = "private, max-age=3600"
            return response
        return Response(
            {
                "model_type": record.model_type,
                "embedding": base64.b64encode(raw).decode("ascii"),
                "transform": info,
                "decoder_url": decoder_url,
                "computed_on_demand": lookup.computed_on_demand,
            }
        )


class DecoderOnnxApi(APIView):
    """GET /intellibrush/decoder.onnx?model_type=...: SAM prompt encoder + mask decoder."""

    @extend_schema(
        parameters=[OpenApiParameter("model_type", str, required=False)],
        responses={(200, "application/octet-stream"): bytes},
    )
    def get(self, request):
        path = clicks.decoder_onnx_file(model_type=request.query_params.get("model_type"))
        response = FileResponse(open(path, "rb"), content_type="application/octet-stream")  # noqa: SIM115
        response["Content-Disposition"] = f'attachment; filename="{path.name}"'
        response["ETag"] = f'"{path.stem}"'
        response["Cache-Control"] = "private, max-age=86400"
        return response


class ProjectEmbeddingsApi(APIView):
    """GET: how many of the project's images have embeddings (and the latest job).
    POST: start embedding every image ahead of time (annotators and owners)."""

    @extend_schema(responses=inline_serializer(
        "EmbeddingsStatus",
        {
            "model_type": serializers.CharField(),
            "sam_available": serializers.BooleanField(),
            "total": serializers.IntegerField(),
            "ready": serializers.IntegerField(),
            "job": serializers.DictField(allow_null=True),
        },
    ))
    def get(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        return Response(intellibrush_selectors.embeddings_status(project=project))

    @extend_schema(request=None, responses={202: inline_serializer(
        "EmbeddingsJob", {"job_id": serializers.IntegerField()})})
    def post(self, request, project_id: int):
        project = selectors.project_get_for_user(
            user=request.user, project_id=project_id, min_role=Role.ANNOTATOR
        )
        model_type = conf.sam_model_type()
        job = services.embeddings_precompute_start(project=project, user=request.user)
        if job is None:
            raise conf.sam_unavailable_error(model_type)
        return Response({"job_id": job.pk}, status=status.HTTP_202_ACCEPTED)
