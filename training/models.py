"""Training: workflows (what to train), runs (one execution), their metric points and
checkpoints, and the artifacts a finished run leaves for deployment."""
import uuid

from django.conf import settings
from django.db import models

from projects.models import Project


class TrainingWorkflow(models.Model):
    """A saved training recipe of a project. ``config`` holds a resolved
    ``training.modeling.config.TrainConfig`` as JSON, validated when saved."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_workflows")
    name = models.CharField(max_length=200)
    config = models.JSONField(default=dict)
    val_fraction = models.FloatField(default=0.2)  # held out when no asset has split=val
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class TrainingRun(models.Model):
    """One execution of a workflow: queued -> preparing -> running -> completed | failed |
    cancelled. ``heartbeat_at`` is refreshed by the worker while it holds the run; a run
    whose heartbeat goes stale is resumed from its last checkpoint or marked failed."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        PREPARING = "preparing"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE = (Status.QUEUED, Status.PREPARING, Status.RUNNING)
    FINISHED = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    # Names the run's folder on the worker disk: ids restart with a new database, the
    # disk does not, and a run must never resume another run's checkpoints.
    key = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    workflow = models.ForeignKey(
        TrainingWorkflow, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    config = models.JSONField(default=dict)  # the resolved config this run trains with
    val_fraction = models.FloatField(default=0.2)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    cancel_keep_best = models.BooleanField(default=False)  # cancelled: artifact from the best checkpoint
    attempts = models.PositiveIntegerField(default=0)  # resumptions after a lost worker
    worker = models.CharField(max_length=255, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    best_metric = models.FloatField(null=True, blank=True)
    best_step = models.PositiveIntegerField(null=True, blank=True)
    images_per_second = models.FloatField(null=True, blank=True)
    dataset = models.JSONField(default=dict, blank=True)  # {"train": [asset ids], "val": [...]}
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]


class MetricPoint(models.Model):
    """A training log entry (kind=train: loss, lr, images_per_second, ...) or an
    evaluation (kind=eval: miou, mean_f1, pixel_accuracy, per_class)."""

    class Kind(models.TextChoices):
        TRAIN = "train"
        EVAL = "eval"

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="metric_points")
    step = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    values = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["step", "id"]
        indexes = [models.Index(fields=["run", "id"])]


class Checkpoint(models.Model):
    """A checkpoint directory on the worker's training disk (TESSERA_TRAINING_DIR)."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="checkpoints")
    step = models.PositiveIntegerField()
    path = models.CharField(max_length=1000)
    metrics = models.JSONField(default=dict, blank=True)
    is_best = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["step"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step"], name="unique_checkpoint_step")
        ]


class Artifact(models.Model):
    """A trained model in the shared artifact format, stored under ``storage_prefix`` in
    Django's default storage (``files`` maps relative names to storage names)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="artifacts")
    run = models.OneToOneField(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="artifact"
    )
    name = models.CharField(max_length=200)
    family = models.CharField(max_length=32)
    variant = models.CharField(max_length=32)
    meta = models.JSONField(default=dict)  # the artifact's tessera.json
    storage_prefix = models.CharField(max_length=500)
    files = models.JSONField(default=dict)
    size_bytes = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name
