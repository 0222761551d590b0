"""The Celery application. Queues: `default` (imports, exports, thumbnails, video
frames), `gpu` (training, SAM embeddings; one task per GPU), `inference` (deployed
models kept hot). Routing lives in settings.CELERY_TASK_ROUTES."""
import os

from celery import Celery, signals
from kombu import Queue

from common.logs import celery_logging_connect
from common.metrics import celery_metrics_connect

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tessera")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue("default"), Queue("gpu"), Queue("inference")]
# Task modules outside the `<app>.tasks` convention are listed here explicitly.
app.conf.imports = ["annotator.intellibrush.tasks"]
app.autodiscover_tasks()
celery_metrics_connect()
celery_logging_connect()


@signals.task_prerun.connect(weak=False)
@signals.task_postrun.connect(weak=False)
def close_old_database_connections(**_: object) -> None:
    """Around each task, as around each request: drop connections older than CONN_MAX_AGE
    or unusable, and check the others before their next use (CONN_HEALTH_CHECKS)."""
    from django.db import close_old_connections

    close_old_connections()

QUEUES = ("default", "gpu", "inference")


def enqueue(name: str, *args: object) -> None:
    """Queue the task registered as ``name`` with ``args`` (routed by
    settings.CELERY_TASK_ROUTES). Services enqueue by name, so that a services module does
    not import the tasks module that imports it."""
    app.send_task(name, args=args)


#: How long work handed to the broker is marked as queued (``queued_key``): the beat's sweep
#: (projects.services.queued_work_sweep) queues again only waiting rows without a mark, i.e.
#: those whose enqueue failed or whose queue Redis lost, not those behind a long queue.
QUEUED_MARK_S = 6 * 3600


def queued_key(name: str, object_id: int) -> str:
    return f"queued:{name}:{object_id}"


def enqueue_marked(name: str, object_id: int) -> None:
    """Queue ``name(object_id)`` now and mark it as queued (see QUEUED_MARK_S). Nobody
    waits for its result: without ``ignore_result`` the producer also subscribes to the
    result backend, which with Redis down retries for ~19 s before it fails."""
    from django.core.cache import cache

    app.send_task(name, args=(object_id,), ignore_result=True)
    cache.set(queued_key(name, object_id), 1, QUEUED_MARK_S)


def enqueue_on_commit(name: str, object_id: int) -> None:
    """Queue ``name(object_id)`` once the current transaction commits. A broker error
    (Redis down) is logged, not raised: the row is committed and still waiting, and the
    beat's sweep queues it again once Redis is back. Every service queues its
    work for a row this way."""
    from django.db import transaction

    transaction.on_commit(lambda: enqueue_marked(name, object_id), robust=True)
