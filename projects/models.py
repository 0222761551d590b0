"""Projects, their members and label classes, the assets (images and video frames)
that get labeled, and background jobs with progress."""
from django.conf import settings
from django.db import models


class Project(models.Model):
    class Type(models.TextChoices):
        SEGMENTATION = "segmentation", "Semantic segmentation"

    name = models.CharField(max_length=200)
    type = models.CharField(max_length=32, choices=Type.choices, default=Type.SEGMENTATION)
    description = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set when its deletion starts: from then on the project is gone for every user while
    # a background job removes its files and rows.
    deleting_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    """Ordered from most to least privileged; see ROLE_RANK."""

    OWNER = "owner", "Owner"
    ANNOTATOR = "annotator", "Annotator"
    VIEWER = "viewer", "Viewer"


ROLE_RANK = {Role.VIEWER: 0, Role.ANNOTATOR: 1, Role.OWNER: 2}


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="unique_project_member")
        ]


class LabelClass(models.Model):
    """A class labelers paint with. `index` is its stable 0-based position: the model
    label is index + 1 (0 is background).

    `is_ignore`: the project's void / ignore class (at most one). Its pixels are label
    255 in class maps: training and evaluation leave them out, PNG exports write 255 and
    LabelMe exports ``__ignore__``."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="classes")
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7)
    index = models.PositiveIntegerField()
    is_ignore = models.BooleanField(default=False)

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_class_name"),
            models.UniqueConstraint(fields=["project", "index"], name="unique_class_index"),
            models.UniqueConstraint(fields=["project"], condition=models.Q(is_ignore=True),
                                    name="one_ignore_class_per_project"),
        ]

    def __str__(self) -> str:
        return self.name


class Video(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        DONE = "done"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="videos")
    name = models.CharField(max_length=255)
    file = models.FileField(upload_to="videos/%Y/%m/")
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    progress = models.FloatField(default=0.0)
    frame_count = models.PositiveIntegerField(default=0)
    fps = models.FloatField(null=True)
    duration_s = models.FloatField(null=True)
    error = models.TextField(blank=True, default="")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="unique_video_sha")
        ]


class Asset(models.Model):
    class Status(models.TextChoices):
        """The review workflow: unlabeled -> in_progress -> labeled -> reviewed / rejected
        (a rejected asset goes back to labeled when it is saved again)."""

        UNLABELED = "unlabeled"
        IN_PROGRESS = "in_progress"
        LABELED = "labeled"
        REVIEWED = "reviewed"
        REJECTED = "rejected"

    class Split(models.TextChoices):
        TRAIN = "train"
        VAL = "val"
        TEST = "test"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assets")
    name = models.CharField(max_length=255)
    file = models.FileField(upload_to="assets/%Y/%m/")
    thumbnail = models.FileField(upload_to="thumbnails/%Y/%m/", blank=True, default="")
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNLABELED)
    split = models.CharField(max_length=8, choices=Split.choices, default=Split.TRAIN)
    # True when a person chose the split: auto-split leaves such assets where they are.
    split_locked = models.BooleanField(default=False)
    review_comment = models.TextField(blank=True, default="")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    video = models.ForeignKey(
        Video, null=True, blank=True, on_delete=models.CASCADE, related_name="frames"
    )
    frame_index = models.PositiveIntegerField(null=True, blank=True)
    timestamp_s = models.FloatField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="unique_asset_sha")
        ]
        indexes = [
            models.Index(fields=["project", "status", "id"]),
            models.Index(fields=["project", "split", "id"]),
        ]

    def __str__(self) -> str:
        return self.name


class Job(models.Model):
    """A background job (import, export, video split, embeddings...) whose progress the
    API shows. `result` holds the job's report; `errors` every problem found."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    # Null once the project is deleted: a project deletion job outlives its project and
    # stays visible to the user who started it.
    project = models.ForeignKey(Project, null=True, on_delete=models.SET_NULL, related_name="jobs")
    kind = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    file = models.FileField(upload_to="jobs/%Y/%m/", blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
