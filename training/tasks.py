"""Celery tasks of the training app (queue `gpu`, see CELERY_TASK_ROUTES): thin
wrappers that call the services (web-side writes) and the runner (the GPU worker) with ids."""
from celery import shared_task
from celery.signals import worker_ready

from training import runner, services


@shared_task(name="training.tasks.training_run_execute", acks_late=True)
def training_run_execute(run_id: int) -> None:
    """Train (or resume) run ``run_id``; a run already held by a live worker is left alone."""
    runner.training_run_execute(run_id=run_id)


@shared_task(name="training.tasks.training_runs_recover")
def training_runs_recover() -> list[int]:
    """Re-queue or fail runs whose worker stopped sending heartbeats (for a beat schedule)."""
    return services.training_runs_recover()


@worker_ready.connect
def _recover_on_worker_start(sender=None, **kwargs) -> None:
    """A worker that starts (e.g. after a crash) picks up runs that lost theirs."""
    try:
        services.training_runs_recover()
    except Exception:  # noqa: BLE001 - never keep a worker from starting
        import logging

        logging.getLogger(__name__).exception("training run recovery failed")
