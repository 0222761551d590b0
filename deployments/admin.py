from django.contrib import admin

from common.admin import StaffModelAdmin
from deployments.models import ApiKey, ArtifactExport, Deployment


@admin.register(Deployment)
class DeploymentAdmin(StaffModelAdmin):
    list_display = ["id", "name", "project", "artifact", "runtime", "device", "status", "load_ms",
                    "created_at"]
    list_filter = ["status", "runtime", "device"]
    search_fields = ["name", "project__name"]
    raw_id_fields = ["project", "artifact", "created_by"]
    list_select_related = ["project", "artifact"]


@admin.register(ApiKey)
class ApiKeyAdmin(StaffModelAdmin):
    list_display = ["id", "name", "prefix", "deployment", "rate", "created_at", "last_used_at",
                    "revoked_at"]
    search_fields = ["name", "prefix", "deployment__name"]
    raw_id_fields = ["deployment", "created_by"]
    readonly_fields = ["prefix", "hashed_key"]  # a key is shown once, at creation, by the API
    list_select_related = ["deployment"]


@admin.register(ArtifactExport)
class ArtifactExportAdmin(StaffModelAdmin):
    list_display = ["id", "artifact", "format", "status", "created_at", "finished_at"]
    list_filter = ["format", "status"]
    raw_id_fields = ["artifact", "job"]
