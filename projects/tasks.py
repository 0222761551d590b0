"""Celery tasks of the projects app: thin wrappers that load and call a service."""
from celery import shared_task

from projects import services
from projects.models import Asset, Video


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
