"""Account state Django's user model has no field for."""
from django.conf import settings
from django.db import models


class PasswordChangeRequired(models.Model):
    """The user logs in with a one-time password and must choose their own before anything
    else: the API refuses other calls while this row exists (common.permissions)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                primary_key=True, related_name="password_change_required")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} must change their password"
