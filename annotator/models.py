"""Masks of an asset: every saved state is a revision; the mask set points at the
current one.

Instances are stored as JSON, a list of ``{"class_id": int, "rle": {"size": [H, W],
"counts": str}}`` (COCO compressed RLE, checked and canonical), so a save is one row
and a project's masks load in one query."""
from django.conf import settings
from django.db import models

from projects.models import Asset


class MaskRevision(models.Model):
    class Source(models.TextChoices):
        EDIT = "edit"
        IMPORT = "import"
        RESTORE = "restore"
        SEED = "seed"

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="mask_revisions")
    number = models.PositiveIntegerField()  # 1, 2, ... per asset
    instances = models.JSONField(default=list)
    instance_count = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.EDIT)
    restored_from = models.PositiveIntegerField(null=True, blank=True)  # revision number
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "number"], name="unique_mask_revision_number")
        ]


class MaskSet(models.Model):
    """The asset's current masks (one row per labeled asset)."""

    asset = models.OneToOneField(Asset, on_delete=models.CASCADE, primary_key=True,
                                 related_name="mask_set")
    revision = models.OneToOneField(MaskRevision, on_delete=models.CASCADE, related_name="+")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField()
