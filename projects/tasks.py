"""Celery tasks of the projects app: thin wrappers that load and call a service."""
import logging
import threading
import time

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from projects import services
from projects.models import Asset, Video

logger = logging.getLogger(__name__)


@shared_task(name="projects.tasks.asset_make_thumbnail")
def asset_make_thumbnail(asset_id: int) -> None:
    asset = Asset.objects.filter(pk=asset_id).first()
    if asset is not None:
        services.asset_make_thumbnail(asset=asset)


@shared_task(name="projects.tasks.video_split_frames")
def video_split_frames(video_id: int) -> None:
    video = Video.objects.filter(pk=video_id).first()
    if video is not None:
        services.video_split(video=video)


def _sweep_forever(interval_s: float) -> None:
    """Every ``interval_s``: queue what uploads could not queue while Redis was down. One
    sweep at a time across workers (a cache lock); an error (Redis still down) is logged
    and the next round tries again."""
    from django.core.cache import cache
    from django.db import close_old_connections

    while True:
        time.sleep(interval_s)
        try:
            close_old_connections()
            if cache.add("projects:media-sweep", 1, timeout=max(1, int(interval_s * 0.9))):
                queued = services.media_sweep(older_than_s=interval_s)
                if any(queued.values()):
                    logger.warning("media sweep queued again: %s", queued)
        except Exception:  # noqa: BLE001 - the sweeper must outlive outages
            logger.exception("media sweep failed; retrying in %ss", interval_s)


@worker_ready.connect
def _start_media_sweeper(sender, **_kwargs) -> None:
    """Workers of the default queue (thumbnails, video frames) run the sweep thread."""
    interval_s = settings.TESSERA_MEDIA_SWEEP_S
    consumed = sender.app.amqp.queues.consume_from  # None: every queue
    if interval_s > 0 and (consumed is None or "default" in consumed):
        threading.Thread(target=_sweep_forever, args=(interval_s,), name="media-sweep",
                         daemon=True).start()
@shared_task(name="projects.tasks.project_delete_execute")
def project_delete_execute(job_id: int) -> None:
    from projects.models import Job, Project

    job = Job.objects.filter(pk=job_id).first()
    project = Project.objects.filter(pk=(job.params if job else {}).get("project_id")).first()
    if job is None or project is None:
        return
    try:
        services.project_delete(project=project, job_id=job.id)
    except Exception as exc:
        services.job_finish(job_id=job.id, errors=[{"message": str(exc)[:500]}],
                            message="The deletion stopped; start it again to finish.")
        raise
    services.job_finish(job_id=job.id, result={"project_id": job.params["project_id"]},
                        message="Project deleted.")
