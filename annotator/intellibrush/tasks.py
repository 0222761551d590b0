"""IntelliBrush Celery tasks. Routed to the ``gpu`` queue (settings.CELERY_TASK_ROUTES):
one model per worker process, loaded on the first task and kept. The work is in
``worker.py``; the web side enqueues these from ``services.py``."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from projects.models import Asset


@shared_task(acks_late=True)
def intellibrush_embed_asset(asset_id: int, model_type: str) -> bool:
    """Compute and store one asset's SAM embedding; True if it was computed now."""
    from . import worker

    asset = Asset.objects.filter(pk=asset_id).first()
    if asset is None:
        return False
    _, computed = worker.embedding_compute(asset=asset, model_type=model_type)
    return computed


@shared_task(acks_late=True)
def intellibrush_embed_project(job_id: int, model_type: str, state: dict[str, Any]) -> int:
    """One slice of a precompute job; re-enqueues itself (low priority) for the rest."""
    from . import worker

    state = worker.embeddings_project_step(job_id=job_id, model_type=model_type, state=state)
    if state["remaining"]:
        intellibrush_embed_project.apply_async(args=[job_id, model_type, state], priority=9)
    return len(state["remaining"])
