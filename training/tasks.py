"""Celery tasks of the training app (queue `gpu`, recovery on `default`; see CELERY_TASK_ROUTES): thin
wrappers that call the services (web-side writes) and the runner (the GPU worker) with ids."""
from celery import shared_task

from training import runner, services


@shared_task(name="training.tasks.training_run_execute", acks_late=True)
def training_run_execute(run_id: int) -> None:
    """Train (or resume) run ``run_id``; a run already held by a live worker is left alone."""
    runner.training_run_execute(run_id=run_id)


@shared_task(name="training.tasks.training_runs_recover")
def training_runs_recover() -> list[int]:
    """Re-queue or fail runs whose worker stopped sending heartbeats. Sent every
    TESSERA_TRAINING_RECOVER_EVERY_S seconds by Celery beat (settings.CELERY_BEAT_SCHEDULE),
    on the ``default`` queue."""
    return services.training_runs_recover()
