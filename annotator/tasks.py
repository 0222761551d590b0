"""Celery tasks of the annotator app (queue `default`): thin wrappers that load a job
and call its service. An unexpected failure is recorded on the job before it is raised,
so the API never shows a job stuck at "running".

Tasks are acks_late + reject_on_worker_lost: a task whose worker dies (killed for
memory, a segfault in C code) goes back to the broker. Each start is counted on the
job; after TESSERA_TASK_MAX_CRASHES starts that never finished, the job fails with a
readable reason and the message is acknowledged, so a poison file cannot loop."""
from celery import shared_task
from django.conf import settings

from annotator import services
from projects.services import job_attempt, job_finish

_TIMES = {1: "once", 2: "twice"}


def _run(job_id: int, work, what: str) -> None:
    crashes = settings.TESSERA_TASK_MAX_CRASHES
    job = job_attempt(job_id=job_id, max_attempts=crashes, crashed_message=(
        f"The {what[0]} crashed the worker {_TIMES.get(crashes, f'{crashes} times')}; "
        f"nothing was {what[1]}."))
    if job is None:
        return
    try:
        work(job=job)
    except services.JobCancelled:
        return
    except Exception as exc:
        job_finish(job_id=job_id, errors=[{"code": "internal_error", "message": str(exc)[:1000],
                                           "where": ""}],
                   message="The job failed unexpectedly; nothing was changed.")
        raise


@shared_task(name="annotator.tasks.dataset_import")
def dataset_import(job_id: int) -> None:
    _run(job_id, services.import_run, ("import", "imported"))


@shared_task(name="annotator.tasks.dataset_export")
def dataset_export(job_id: int) -> None:
    _run(job_id, services.export_run, ("export", "exported"))
