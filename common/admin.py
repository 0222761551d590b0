from django.contrib import admin

from common.models import PasswordChangeRequired


class StaffModelAdmin(admin.ModelAdmin):
    """Every staff user may browse (read) Tessera's models; adding, changing and deleting
    still need Django's model permissions (superusers have them all)."""

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff


@admin.register(PasswordChangeRequired)
class PasswordChangeRequiredAdmin(StaffModelAdmin):
    list_display = ["user", "created_at"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]
