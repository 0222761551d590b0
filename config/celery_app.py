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
