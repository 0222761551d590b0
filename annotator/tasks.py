"""Celery tasks of the annotator app (queue `default`): thin wrappers that load a job
and call its service. An unexpected failure is recorded on the job before it is raised,
so the API never shows a job stuck at "running"."""
from celery import shared_task

from annotator import services
from projects.models import Job
from projects.services import job_finish


def _run(job_id: int, work) -> None:
    job = Job.objects.select_related("project", "created_by").filter(pk=job_id).first()
    if job is None:
        return
    try:
        work(job=job)
    except Exception as exc:
        job_finish(job_id=job_id, errors=[{"code": "internal_error", "message": str(exc)[:1000],
                                           "where": ""}],
                   message="The job failed unexpectedly; nothing was changed.")
        raise


@shared_task(name="annotator.tasks.dataset_import")
def dataset_import(job_id: int) -> None:
    _run(job_id, services.import_run)


@shared_task(name="annotator.tasks.dataset_export")
def dataset_export(job_id: int) -> None:
    _run(job_id, services.export_run)
