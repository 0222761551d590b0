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
