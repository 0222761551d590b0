"""IntelliBrush routes (included under /api/v1/ by annotator.urls)."""

from django.urls import path

from . import apis

urlpatterns = [
    path("assets/<id:asset_id>/intellibrush/", apis.IntelliBrushApi.as_view(), name="asset-intellibrush"),
    path("assets/<id:asset_id>/embedding/", apis.AssetEmbeddingApi.as_view(), name="asset-embedding"),
    path("intellibrush/decoder.onnx", apis.DecoderOnnxApi.as_view(), name="intellibrush-decoder"),
    path("projects/<id:project_id>/intellibrush/embeddings/", apis.ProjectEmbeddingsApi.as_view(),
         name="project-embeddings"),
]
