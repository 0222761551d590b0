"""Deployments: a trained artifact served by the inference workers, the API keys that may
call it, and the cached export files of artifacts (ONNX, int8, TorchScript, bundle)."""
from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from projects.models import Job, Project
from training.models import Artifact


class Deployment(models.Model):
    """An artifact loaded (kept hot) by the ``inference`` workers.

    deploying -> ready | failed (``reason`` says why). The load task on the ``inference``
    queue loads the model and runs one warm-up forward before marking it ready."""

    class Runtime(models.TextChoices):
        PYTORCH = "pytorch"
        ONNXRUNTIME = "onnxruntime"
        ONNXRUNTIME_INT8 = "onnxruntime-int8"

    class Device(models.TextChoices):
        CPU = "cpu"
        CUDA = "cuda"

    class Status(models.TextChoices):
        DEPLOYING = "deploying"
        READY = "ready"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="deployments")
    artifact = models.ForeignKey(Artifact, on_delete=models.CASCADE, related_name="deployments")
    name = models.CharField(max_length=200)
    runtime = models.CharField(max_length=32, choices=Runtime.choices, default=Runtime.ONNXRUNTIME)
    device = models.CharField(max_length=8, choices=Device.choices, default=Device.CPU)
    replicas = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DEPLOYING)
    reason = models.TextField(blank=True, default="")
    worker = models.CharField(max_length=255, blank=True, default="")  # who loaded it
    load_ms = models.FloatField(null=True, blank=True)  # load + warm-up forward
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A secret that may call one deployment's predict endpoint.

    The token is ``tsk_<prefix>_<secret>``; only ``prefix`` (for lookup) and the sha256
    of the whole token are stored, so the token is shown once, when created. ``rate``
    overrides the default throttle rate (DRF syntax, e.g. ``"120/min"``)."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True, default="")
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=64, unique=True)  # sha256 hex of the token
    rate = models.CharField(max_length=32, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class ArtifactExport(models.Model):
    """One export file of an artifact, built once on the ``default`` queue and kept in
    default storage under ``storage_name``; ``job`` shows the build's progress."""

    class Format(models.TextChoices):
        ONNX = "onnx"
        ONNX_INT8 = "onnx-int8"
        TORCHSCRIPT = "torchscript"
        BUNDLE = "bundle"

    class Status(models.TextChoices):
        BUILDING = "building"
        READY = "ready"
        FAILED = "failed"

    artifact = models.ForeignKey(Artifact, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=16, choices=Format.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BUILDING)
    storage_name = models.CharField(max_length=500, blank=True, default="")
    size_bytes = models.BigIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["artifact", "format"]
        constraints = [
            models.UniqueConstraint(fields=["artifact", "format"], name="unique_artifact_export")
        ]


@receiver(post_delete, sender=ArtifactExport)
def _delete_export_file(sender, instance: ArtifactExport, **kwargs) -> None:
    """Rows also go by cascade (an artifact deleted): their files follow on commit."""
    name = instance.storage_name
    if name:
        transaction.on_commit(lambda: default_storage.delete(name))
