"""Celery tasks of the projects app: thin wrappers that load and call a service."""
import logging

from celery import shared_task
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


@shared_task(name="projects.tasks.queued_work_sweep")
def queued_work_sweep() -> dict[str, int]:
    """Queue again the work that could not be queued (Redis down) or that Redis lost. Sent
    every TESSERA_REQUEUE_SWEEP_S by Celery beat (settings.CELERY_BEAT_SCHEDULE); one sweep
    at a time (a cache lock), should a backlog deliver several at once."""
    from django.core.cache import cache

    every_s = settings.TESSERA_REQUEUE_SWEEP_S
    if not cache.add("projects:queued-work-sweep", 1, timeout=max(1, int(every_s * 0.9))):
        return {}
    queued = services.queued_work_sweep(older_than_s=every_s)
    if queued:
        logger.warning("queued again after a broker outage: %s", queued)
    return queued


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
