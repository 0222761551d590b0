"""The API's default permission: signed in, and not still holding a one-time password."""
from rest_framework.permissions import IsAuthenticated


class IsAuthenticatedWithOwnPassword(IsAuthenticated):
    """IsAuthenticated, and refuses (403 ``password_change_required``) a user who logged
    in with a one-time password until they choose their own (POST /api/v1/auth/password/)."""

    message = "Choose your own password first (POST /api/v1/auth/password/)."
    code = "password_change_required"

    def has_permission(self, request, view) -> bool:
        from common.services import password_change_pending

        return super().has_permission(request, view) and not password_change_pending(user=request.user)
