"""Prometheus metrics (prometheus-client): what each process counts, and the endpoint.

Counted where it happens, in every process:
  * web: HTTP requests and their latency by view (``MetricsMiddleware``), predictions by
    deployment with latency and status code (``prediction_observe``, from the predict view);
  * Celery workers: tasks by name and outcome with their duration, the queues each worker
    consumes (``celery_metrics_connect``); inference workers also count lane requests by
    artifact with their inference time (``inference_observe``).
Read from Redis and the database when scraped (``StateCollector``, web only): queue
lengths (Celery queues and the predict lane), inference workers and their hot models,
training runs by status, the SAM embedding backlog.

Several processes (Celery's prefork children, several web processes in one pod) share
their counters through ``PROMETHEUS_MULTIPROC_DIR`` (set in the environment before the
process starts, an empty directory at each start); without it each process reports its
own. The web serves ``GET /metrics`` (with ``TESSERA_METRICS_TOKEN`` set, only to
``Authorization: Bearer <token>``); a worker started with ``TESSERA_METRICS_PORT`` serves
its own on that port.
"""
from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter("tessera_http_requests_total", "HTTP requests answered, by view.",
                        ["view", "method", "status"])
HTTP_LATENCY = Histogram("tessera_http_request_duration_seconds", "HTTP request latency by view.",
                         ["view", "method"], buckets=LATENCY_BUCKETS)
PREDICTIONS = Counter("tessera_predictions_total", "Predict requests by deployment and status code.",
                      ["deployment", "status"])
PREDICTION_LATENCY = Histogram("tessera_prediction_duration_seconds",
                               "Predict request latency (web side, end to end) by deployment.",
                               ["deployment"], buckets=LATENCY_BUCKETS)
TASKS = Counter("tessera_celery_tasks_total", "Celery tasks run, by task and outcome.", ["task", "state"])
TASK_LATENCY = Histogram("tessera_celery_task_duration_seconds", "Celery task run time by task.",
                         ["task"], buckets=LATENCY_BUCKETS + (300.0, 1800.0, 7200.0))
WORKER_QUEUES = Gauge("tessera_celery_worker_queues", "Celery worker processes consuming each queue.",
                      ["queue"], multiprocess_mode="livesum")
INFERENCE_REQUESTS = Counter("tessera_inference_requests_total",
                             "Predict lane requests served by an inference worker, by artifact.",
                             ["artifact", "outcome"])
INFERENCE_LATENCY = Histogram("tessera_inference_duration_seconds",
                              "Inference worker time per lane request, by artifact.",
                              ["artifact"], buckets=LATENCY_BUCKETS)


def prediction_observe(*, deployment_id: int, status: int, seconds: float) -> None:
    PREDICTIONS.labels(str(deployment_id), str(status)).inc()
    PREDICTION_LATENCY.labels(str(deployment_id)).observe(seconds)


def inference_observe(*, artifact_id: int, ok: bool, seconds: float) -> None:
    INFERENCE_REQUESTS.labels(str(artifact_id), "ok" if ok else "error").inc()
    INFERENCE_LATENCY.labels(str(artifact_id)).observe(seconds)


class MetricsMiddleware:
    """Counts each request and its latency under the view's URL name (sync-only, like the
    rest of the chain: see common.middleware)."""

    sync_capable, async_capable = True, False

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match.route) if match else "<unresolved>"
        HTTP_LATENCY.labels(view, request.method).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(view, request.method, str(response.status_code)).inc()
        return response


class StateCollector:
    """Gauges read when scraped: cheap queries (LLEN, one GROUP BY, a few job rows)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for read in (self._queues, self._inference_workers, self._training_runs, self._embeddings):
            try:
                yield from read()
            except Exception:  # noqa: BLE001 - one broken source must not hide the others
                logger.warning("metrics: %s failed", read.__name__, exc_info=True)

    @staticmethod
    def _queues() -> Iterator[GaugeMetricFamily]:
        from kombu.transport.redis import PRIORITY_STEPS, Channel

        from config.celery_app import QUEUES
        from deployments.lane import LANE_QUEUE
        from deployments.registry import redis_client, redis_key

        client = redis_client()
        family = GaugeMetricFamily("tessera_queue_length", "Messages waiting in each queue.",
                                   labels=["queue"])
        # Celery's Redis transport keeps one list per priority step of a queue.
        lists = {queue: [queue, *(f"{queue}{Channel.sep}{p}" for p in PRIORITY_STEPS if p)]
                 for queue in QUEUES}
        lists["predict-lane"] = [redis_key(LANE_QUEUE)]
        pipe = client.pipeline(transaction=False)
        for keys in lists.values():
            for key in keys:
                pipe.llen(key)
        lengths = iter(pipe.execute())
        for queue, keys in lists.items():
            family.add_metric([queue], sum(next(lengths) for _ in keys))
        yield family

    @staticmethod
    def _inference_workers() -> Iterator[GaugeMetricFamily]:
        from deployments.registry import inference_workers

        workers = inference_workers()
        yield GaugeMetricFamily("tessera_inference_workers",
                                "Inference workers with a recent heartbeat.", value=len(workers))
        hot = GaugeMetricFamily("tessera_hot_models", "Artifacts loaded in inference workers.",
                                labels=["worker", "artifact"])
        for worker in workers:
            for artifact_id in worker.get("artifacts", ()):
                hot.add_metric([worker["name"], str(artifact_id)], 1)
        yield hot

    @staticmethod
    def _training_runs() -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count

        from training.models import TrainingRun

        family = GaugeMetricFamily("tessera_training_runs", "Training runs by status.", labels=["status"])
        counts = dict(TrainingRun.objects.values_list("status").annotate(n=Count("id")))
        for status in TrainingRun.Status.values:
            family.add_metric([status], counts.get(status, 0))
        yield family

    @staticmethod
    def _embeddings() -> Iterator[GaugeMetricFamily]:
        from annotator.intellibrush.conf import JOB_KIND
        from projects.models import Job

        backlog = 0.0
        jobs = Job.objects.filter(kind=JOB_KIND, status__in=[Job.Status.QUEUED, Job.Status.RUNNING])
        for params, progress in jobs.values_list("params", "progress"):
            backlog += (params or {}).get("total", 0) * (1.0 - min(max(progress or 0.0, 0.0), 1.0))
        yield GaugeMetricFamily("tessera_embedding_backlog",
                                "SAM embeddings still to compute by precompute jobs.", value=round(backlog))


def process_registry() -> CollectorRegistry | None:
    """The registry holding this process's counters (all processes' when multiprocess)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return registry
    return None  # the default registry


def metrics_text() -> bytes:
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector())
    return generate_latest(process_registry() or REGISTRY) + generate_latest(state)


def metrics_view(request):
    """GET /metrics: the Prometheus text format."""
    from django.http import HttpResponse, JsonResponse

    from common.conf import setting

    token = setting("TESSERA_METRICS_TOKEN", "")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return JsonResponse({"error": {"code": "not_authenticated", "message":
                                           "Metrics need 'Authorization: Bearer <TESSERA_METRICS_TOKEN>'.",
                                           "details": {}}}, status=401)
    if request.method != "GET":
        return JsonResponse({"error": {"code": "method_not_allowed", "message": "Use GET.",
                                       "details": {}}}, status=405)
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


# --- Celery workers ------------------------------------------------------------------------------
_task_started: dict[str, float] = {}


def _task_prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _task_started[task_id] = time.perf_counter()


def _task_postrun(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    started = _task_started.pop(task_id, None) if task_id else None
    name = getattr(task, "name", "unknown")
    TASKS.labels(name, state or "UNKNOWN").inc()
    if started is not None:
        TASK_LATENCY.labels(name).observe(time.perf_counter() - started)


def _worker_ready(sender: Any = None, **_: Any) -> None:
    """``sender``: the worker's consumer; its app consumes from the worker's -Q queues."""
    for queue in sender.app.amqp.queues.consume_from:
        WORKER_QUEUES.labels(queue).set(1)


def _worker_init(**_: Any) -> None:
    """The worker's main process, before its pool starts: a fresh multiprocess directory
    (a restarted container keeps its emptyDir; the dead processes' gauges must not count)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        for stale in Path(directory).glob("*.db"):
            stale.unlink(missing_ok=True)
    port = os.environ.get("TESSERA_METRICS_PORT")
    if port:
        from prometheus_client import start_http_server

        start_http_server(int(port), registry=process_registry() or REGISTRY)
        logger.info("metrics served on port %s", port)


def _worker_process_shutdown(pid: int | None = None, **_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        prometheus_multiprocess.mark_process_dead(pid or os.getpid())


def celery_metrics_connect() -> None:
    """Count tasks in every worker process; serve metrics from the main one when asked."""
    from celery import signals

    signals.task_prerun.connect(_task_prerun, weak=False)
    signals.task_postrun.connect(_task_postrun, weak=False)
    signals.worker_ready.connect(_worker_ready, weak=False)
    signals.worker_init.connect(_worker_init, weak=False)
    signals.worker_process_shutdown.connect(_worker_process_shutdown, weak=False)
