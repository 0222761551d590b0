"""IntelliBrush reads: how far a project's embeddings are."""

from __future__ import annotations

from typing import Any

from projects.models import Asset, Job, Project

from .conf import JOB_KIND, sam_available, sam_model_type
from .store import embedding_exists


def embeddings_status(*, project: Project) -> dict[str, Any]:
    """How many of the project's assets have a stored embedding, and the latest job."""
    model_type = sam_model_type()
    assets = list(Asset.objects.filter(project=project).only("id", "sha256"))
    ready = sum(1 for a in assets if embedding_exists(asset=a, model_type=model_type))
    job = Job.objects.filter(project=project, kind=JOB_KIND).order_by("-created_at", "-id").first()
    return {
        "model_type": model_type,
        "sam_available": sam_available(model_type),
        "total": len(assets),
        "ready": ready,
        "job": None if job is None else {
            "id": job.pk, "status": job.status, "progress": job.progress,
            "message": job.message, "errors": job.errors,
        },
    }
