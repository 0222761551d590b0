from django.contrib import admin

from common.admin import StaffModelAdmin
from training.models import Artifact, Checkpoint, MetricPoint, TrainingRun, TrainingWorkflow


@admin.register(TrainingWorkflow)
class TrainingWorkflowAdmin(StaffModelAdmin):
    list_display = ["id", "name", "project", "val_fraction", "created_by", "created_at"]
    search_fields = ["name", "project__name"]
    raw_id_fields = ["project", "created_by"]
    list_select_related = ["project", "created_by"]


@admin.register(TrainingRun)
class TrainingRunAdmin(StaffModelAdmin):
    list_display = ["id", "project", "workflow", "status", "step", "total_steps", "best_metric",
                    "worker", "created_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["project__name", "workflow__name", "message", "worker"]
    raw_id_fields = ["project", "workflow", "created_by"]
    list_select_related = ["project", "workflow"]


@admin.register(MetricPoint)
class MetricPointAdmin(StaffModelAdmin):
    list_display = ["id", "run", "step", "kind", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["run"]


@admin.register(Checkpoint)
class CheckpointAdmin(StaffModelAdmin):
    list_display = ["id", "run", "step", "is_best", "path", "created_at"]
    list_filter = ["is_best"]
    raw_id_fields = ["run"]


@admin.register(Artifact)
class ArtifactAdmin(StaffModelAdmin):
    list_display = ["id", "name", "project", "family", "variant", "run", "created_at"]
    list_filter = ["family"]
    search_fields = ["name", "project__name"]
    raw_id_fields = ["project", "run", "created_by"]
    list_select_related = ["project"]
