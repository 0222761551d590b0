"""Celery tasks of the deployments app: thin wrappers that call ``worker`` (inference
queue) and ``exports`` (default queue) with ids.

Routing (settings.CELERY_TASK_ROUTES): ``deployment_load`` goes to the ``inference``
queue, whose workers keep models hot; exports, reports and pruning go to ``default``.

A worker that consumes the ``inference`` queue also, beside Celery's own pool:
  * runs ``TESSERA_INFERENCE_LANE_THREADS`` (8) lane threads that take prediction requests
    from Redis (``worker.predict_lane_serve``; concurrent requests meet in the same
    hot model's batching queue, so they may share forward passes);
  * announces itself in Redis every few seconds (``registry.inference_worker_heartbeat``);
  * loads the ready deployments' models when it starts (``worker.deployments_preload_ready``);
  * answers the ``tessera_unload_artifact`` and ``tessera_preload_deployment`` broadcasts.

Settings (``common.conf.setting``: Django setting, else environment variable, else default):
  TESSERA_INFERENCE_HEARTBEAT_S       inference worker heartbeat period (2)
  TESSERA_INFERENCE_HEARTBEAT_TTL_S   a worker silent this long counts as gone (8)
  TESSERA_INFERENCE_LANE_THREADS      prediction requests an inference worker takes at once (8)
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from celery.worker.control import control_command

from common.conf import setting
from deployments import exports, registry, worker

logger = logging.getLogger(__name__)


@shared_task(name="deployments.tasks.deployment_load", bind=True)
def deployment_load(self, deployment_id: int) -> None:
    """Load (and warm up) a deployment in this inference worker; mark it ready/failed."""
    # The heartbeat runs in the process whose lane threads serve predictions: a prefork
    # child (its copy of the thread is not alive) has nothing to announce.
    serving = _heartbeat is not None and _heartbeat.is_alive()
    worker.deployment_load(deployment_id=deployment_id, worker=self.request.hostname or "",
                             loaded=_heartbeat.beat if serving else None)


@shared_task(name="deployments.tasks.artifact_export_build")
def artifact_export_build(export_id: int) -> None:
    exports.artifact_export_build(export_id=export_id)


@shared_task(name="deployments.tasks.artifact_report_run")
def artifact_report_run(job_id: int) -> None:
    exports.artifact_report_run(job_id=job_id)


@shared_task(name="deployments.tasks.artifact_prune_run")
def artifact_prune_run(job_id: int) -> None:
    exports.artifact_prune_run(job_id=job_id)


@control_command(args=[("artifact_id", int)], signature="<artifact_id>")
def tessera_unload_artifact(state, artifact_id: int) -> dict[str, Any]:
    """Broadcast after a deployment is deleted: free the models of that artifact."""
    return {"ok": worker.artifact_unload(artifact_id=artifact_id)}


@control_command(args=[("deployment_id", int)], signature="<deployment_id>")
def tessera_preload_deployment(state, deployment_id: int) -> dict[str, Any]:
    """Broadcast when a deployment is created: inference workers load its model in the
    background (not in this control thread, which also receives the worker's tasks)."""
    if _heartbeat is None:
        return {"ok": False, "reason": "not an inference worker"}
    _in_background(worker.deployment_preload, f"tessera-preload-{deployment_id}",
                   deployment_id=deployment_id)
    return {"ok": True}


def _in_background(fn: Any, name: str, **kwargs: Any) -> None:
    """Run ``fn(**kwargs)`` in a daemon thread that closes its database connection after."""
    from django.db import connection

    def run() -> None:
        try:
            fn(**kwargs)
        except Exception:  # noqa: BLE001 - a preload is an optimisation; the log says why
            logger.warning("%s failed", name, exc_info=True)
        finally:
            connection.close()

    threading.Thread(target=run, name=name, daemon=True).start()


class _Heartbeat(threading.Thread):
    def __init__(self, name: str, period_s: float, ttl_s: float) -> None:
        super().__init__(name="tessera-inference-heartbeat", daemon=True)
        self.worker_name, self.period_s, self.ttl_s = name, period_s, ttl_s
        self.done = threading.Event()
        self.info: dict[str, Any] | None = None

    def beat(self) -> None:
        """Announce this worker and the artifacts it holds now."""
        try:
            if self.info is None:
                self.info = registry.inference_worker_info(self.worker_name)
            info = {**self.info, "artifacts": worker.loaded_artifact_ids()}
            registry.inference_worker_heartbeat(info=info, ttl_s=self.ttl_s)
        except Exception:  # noqa: BLE001 - Redis may blink; try again next period
            logger.warning("inference heartbeat failed", exc_info=True)

    def run(self) -> None:
        while not self.done.is_set():
            self.beat()
            self.done.wait(self.period_s)


_heartbeat: _Heartbeat | None = None
_lane_stop = threading.Event()
_lane_threads: list[threading.Thread] = []


@worker_ready.connect
def _announce_inference_worker(sender=None, **kwargs) -> None:
    """Only workers that consume the ``inference`` queue announce themselves."""
    global _heartbeat
    known = sender.app.amqp.queues
    queues = set(known.consume_from or known)  # no -Q: every declared queue
    if "inference" not in queues:
        return
    _heartbeat = _Heartbeat(sender.hostname,
                            setting("TESSERA_INFERENCE_HEARTBEAT_S", 2.0, float),
                            setting("TESSERA_INFERENCE_HEARTBEAT_TTL_S", 8.0, float))
    _heartbeat.start()
    _lane_stop.clear()
    for i in range(setting("TESSERA_INFERENCE_LANE_THREADS", 8, int)):
        thread = threading.Thread(target=worker.predict_lane_serve, args=(_lane_stop,),
                                  kwargs={"worker": sender.hostname}, name=f"tessera-lane-{i}",
                                  daemon=True)
        thread.start()
        _lane_threads.append(thread)
    _in_background(worker.deployments_preload_ready, "tessera-preload-ready")


@worker_shutdown.connect
def _retire_inference_worker(sender=None, **kwargs) -> None:
    if _heartbeat is None:
        return
    _lane_stop.set()  # each lane thread finishes the request it holds
    for thread in _lane_threads:
        thread.join(timeout=30)
    _heartbeat.done.set()
    _heartbeat.join(timeout=5)
    try:
        registry.inference_worker_forget(name=_heartbeat.worker_name)
    except Exception:  # noqa: BLE001
        logger.warning("could not remove this worker from the inference registry", exc_info=True)
