"""OpenAPI schema generation (drf-spectacular) for the one-view-per-action style."""
from drf_spectacular.openapi import AutoSchema


class TesseraAutoSchema(AutoSchema):
    """Names components after their view: the nested `Input` serializer of
    `ProjectListCreateApi` becomes `ProjectListCreateInput`, so the many `Input` and
    `Output` classes of different views never collide in the schema."""

    def get_serializer_name(self, serializer, direction):
        qualname = type(serializer).__qualname__
        if "." in qualname and "<locals>" not in qualname:
            outer, inner = qualname.rsplit(".", 1)
            return outer.replace(".", "").removesuffix("Api") + inner
        return super().get_serializer_name(serializer, direction)
