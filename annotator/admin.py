from django.contrib import admin

from annotator.models import MaskRevision, MaskSet
from common.admin import StaffModelAdmin


@admin.register(MaskRevision)
class MaskRevisionAdmin(StaffModelAdmin):
    list_display = ["id", "asset", "number", "instance_count", "source", "created_by", "created_at"]
    list_filter = ["source"]
    search_fields = ["asset__name"]
    raw_id_fields = ["asset", "created_by"]
    list_select_related = ["asset", "created_by"]


@admin.register(MaskSet)
class MaskSetAdmin(StaffModelAdmin):
    list_display = ["asset", "revision", "updated_by", "updated_at"]
    search_fields = ["asset__name"]
    raw_id_fields = ["asset", "revision", "updated_by"]
    list_select_related = ["asset", "revision", "updated_by"]
