"""OpenAPI schema generation (drf-spectacular) for the one-view-per-action style."""
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ErrorDetailOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField()


class ErrorOutput(serializers.Serializer):
    """Every error answer: ``{"error": {"code", "message", "details"}}``."""

    error = ErrorDetailOutput()


# The error answers any operation may give (common.errors renders them all alike).
ERRORS = {
    "400": "Invalid input (`validation_error` lists the fields).",
    "401": "Wrong or missing credentials (API keys, tokens).",
    "403": "Not signed in, or the role in the project is too low.",
    "404": "No such object, or not a member of its project.",
    "409": "Conflicts with the current state (e.g. a newer revision, not ready yet).",
    "429": "Too many requests; `Retry-After` says when to try again.",
    "503": "A backing service (Redis, a worker) is unavailable; `Retry-After` says when to retry.",
}
WRITE_ERRORS = {
    "413": "The request body or one of its files is too large.",
}


class TesseraAutoSchema(AutoSchema):
    """Names components after their view: the nested `Input` serializer of
    `ProjectListCreateApi` becomes `ProjectListCreateInput`, so the many `Input` and
    `Output` classes of different views never collide in the schema. Every operation
    also documents the error answers it can give, in the API's one error format."""

    def get_serializer_name(self, serializer, direction):
        qualname = type(serializer).__qualname__
        if "." in qualname and "<locals>" not in qualname:
            outer, inner = qualname.rsplit(".", 1)
            return outer.replace(".", "").removesuffix("Api") + inner
        return super().get_serializer_name(serializer, direction)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = ERRORS if self.method == "GET" else {**ERRORS, **WRITE_ERRORS}
        for code, description in errors.items():
            if code not in responses:
                responses[code] = {**self._get_response_for_code(ErrorOutput, code),
                                   "description": description}
        return dict(sorted(responses.items()))
