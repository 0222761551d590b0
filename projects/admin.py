from django.contrib import admin

from common.admin import StaffModelAdmin
from projects.models import Asset, Job, LabelClass, Membership, Project, Video


class MembershipInline(admin.TabularInline):
    model = Membership
    raw_id_fields = ["user"]
    extra = 0


class LabelClassInline(admin.TabularInline):
    model = LabelClass
    extra = 0


@admin.register(Project)
class ProjectAdmin(StaffModelAdmin):
    list_display = ["id", "name", "type", "created_by", "created_at"]
    list_filter = ["type"]
    search_fields = ["name", "description"]
    raw_id_fields = ["created_by"]
    inlines = [MembershipInline, LabelClassInline]


@admin.register(Membership)
class MembershipAdmin(StaffModelAdmin):
    list_display = ["id", "project", "user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["project__name", "user__username"]
    raw_id_fields = ["project", "user"]
    list_select_related = ["project", "user"]


@admin.register(Asset)
class AssetAdmin(StaffModelAdmin):
    list_display = ["id", "name", "project", "status", "split", "width", "height", "created_at"]
    list_filter = ["status", "split"]
    search_fields = ["name", "sha256", "project__name"]
    raw_id_fields = ["project", "video", "uploaded_by"]
    list_select_related = ["project"]


@admin.register(Video)
class VideoAdmin(StaffModelAdmin):
    list_display = ["id", "name", "project", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "project__name"]
    raw_id_fields = ["project"]
    list_select_related = ["project"]


@admin.register(Job)
class JobAdmin(StaffModelAdmin):
    list_display = ["id", "kind", "project", "status", "progress", "message", "created_at", "finished_at"]
    list_filter = ["status", "kind"]
    search_fields = ["kind", "message", "project__name"]
    raw_id_fields = ["project", "created_by"]
    list_select_related = ["project"]


@admin.register(LabelClass)
class LabelClassAdmin(StaffModelAdmin):
    list_display = ["id", "name", "project", "index", "color"]
    search_fields = ["name", "project__name"]
    raw_id_fields = ["project"]
    list_select_related = ["project"]
