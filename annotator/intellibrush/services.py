"""IntelliBrush web-side writes: ask for an embedding and wait for it, start precompute
jobs, and react to the assets ``projects`` announces.

Where the rest lives: configuration in ``conf.py``; storage, the hot cache and the Redis
markers in ``store.py``; the gpu worker's side (compute, precompute slices) in
``worker.py`` behind ``tasks.py``; clicks in ``clicks.py``; reads in ``selectors.py``.

One computation per embedding: a request that finds none enqueues the task only if no
other request or job already did (an atomic ``cache.add`` pending marker in Redis), and
then every waiting request polls the stored result. On-demand tasks are sent with the
most urgent priority, ahead of background precompute slices (priority 9).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction

from common.errors import ApplicationError
from projects import services as project_services
from projects.models import Asset, Job, Project

from . import conf, store
from .conf import JOB_KIND, precompute_enabled, sam_available, sam_model_type
from .sam import EmbeddingRecord
from .tasks import intellibrush_embed_asset, intellibrush_embed_project


def embedding_request(*, asset: Asset, model_type: str) -> bool:
    """Enqueue the embedding task unless one is already pending. True if this call enqueued."""
    key = store.embedding_key(asset=asset, model_type=model_type)
    if not cache.add(store.pending_key(key), "1", timeout=store.LOCK_TTL_S):
        return False
    cache.delete(store.failed_key(key))
    # Default priority: on the Redis transport that is the most urgent list, served
    # before the project-wide precompute tasks (sent with priority 9). Then a running
    # precompute slice is told to end early (after the message is in the queue, so the
    # worker's next fetch finds it).
    intellibrush_embed_asset.apply_async(args=[asset.pk, model_type])
    store.on_demand_enqueued()
    return True


@dataclass(frozen=True)
class EmbeddingLookup:
    """record; source: "cache" (already stored), "computed" (this request started the
    computation) or "joined" (waited for a computation another request or job started)."""

    record: EmbeddingRecord
    source: str

    @property
    def computed_on_demand(self) -> bool:
        return self.source != "cache"


def embedding_get_or_compute(
    *, asset: Asset, model_type: str, wait_s: float | None = None
) -> EmbeddingLookup:
    """The embedding of ``asset``, computing it on the gpu queue if needed and waiting.

    Raises ApplicationError 503 ``embedding_pending`` when it is not ready within
    ``wait_s`` (the computation keeps going; retry later), or 502 ``embedding_failed``.
    """
    record = store.embedding_load(asset=asset, model_type=model_type)
    if record is not None:
        return EmbeddingLookup(record, "cache")
    key = store.embedding_key(asset=asset, model_type=model_type)
    started = embedding_request(asset=asset, model_type=model_type)
    deadline = time.monotonic() + (conf.wait_s() if wait_s is None else wait_s)
    interval = 0.05
    while True:
        record = store.embedding_load(asset=asset, model_type=model_type)
        if record is not None:
            return EmbeddingLookup(record, "computed" if started else "joined")
        failure = cache.get(store.failed_key(key))
        if failure:
            raise ApplicationError(
                f"Computing the SAM embedding failed: {failure}",
                code="embedding_failed",
                status_code=502,
            )
        if time.monotonic() > deadline:
            raise ApplicationError(
                "The SAM embedding of this image is still being computed; retry shortly.",
                code="embedding_pending",
                status_code=503,
                details={"retry_after_s": 2},
            )
        if (cache.get(store.pending_key(key)) is None
                and store.embedding_load(asset=asset, model_type=model_type) is None):
            # The task ended without a result (e.g. its worker was lost): ask again.
            started = embedding_request(asset=asset, model_type=model_type) or started
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


def embeddings_precompute_start(
    *, project: Project, user=None, asset_ids: list[int] | None = None
) -> Job | None:
    """Start a job that embeds the project's assets (or ``asset_ids``) on the gpu queue.

    Returns the Job (progress visible in the jobs API and ``embeddings_status``), or
    None when SAM is not available (nothing to precompute). Enqueued on commit.
    """
    model_type = sam_model_type()
    if not sam_available(model_type):
        return None
    qs = Asset.objects.filter(project=project).order_by("id")
    if asset_ids is not None:
        qs = qs.filter(pk__in=asset_ids)
    ids = list(qs.values_list("id", flat=True))
    job = project_services.job_create(
        project=project, user=user, kind=JOB_KIND, params={"model_type": model_type, "total": len(ids)}
    )
    state = {"remaining": ids, "done": 0, "total": len(ids), "computed": 0, "errors": [],
             "on_demand_seen": store.on_demand_seq()}
    transaction.on_commit(
        lambda: intellibrush_embed_project.apply_async(args=[job.pk, model_type, state], priority=9)
    )
    return job


def embeddings_for_new_assets(*, project: Project, asset_ids: list[int], user=None) -> Job | None:
    """Precompute the new assets' embeddings when enabled (uploads, so the first click is fast)."""
    if not asset_ids or not precompute_enabled():
        return None
    return embeddings_precompute_start(project=project, user=user, asset_ids=asset_ids)


# --------------------------------------------------------------------------- receivers
# Connected to ``projects.signals`` in ``AnnotatorConfig.ready()``.


def on_assets_created(*, project: Project, asset_ids: list[int], user=None, **_signal) -> None:
    embeddings_for_new_assets(project=project, asset_ids=asset_ids, user=user)


def on_assets_deleted(*, asset_ids: list[int], **_signal) -> None:
    for asset_id in asset_ids:
        store.embeddings_delete_for_asset(asset_id=asset_id)
