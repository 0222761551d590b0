"""Writes of deployments (web side): checking that running inference workers can serve
one, recording it and telling the workers to load it; deleting it and telling them to
unload it.

The other modules of the app, and the process each runs in, are listed in the README
("Where code goes").
"""
from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from common.errors import ApplicationError
from config.celery_app import app, enqueue
from deployments.models import Deployment
from deployments.registry import inference_workers, runtime_supported
from training.models import Artifact

logger = logging.getLogger(__name__)


def deployment_create(*, artifact: Artifact, user, name: str = "", runtime: str = "onnxruntime",
                      device: str = "cpu", replicas: int = 1) -> Deployment:
    """Check that running inference workers can serve (runtime, device) with ``replicas``
    processes, record the deployment and enqueue its load on the ``inference`` queue."""
    if runtime not in Deployment.Runtime.values:
        raise ApplicationError(f"Unknown runtime {runtime!r}.", details={"runtime": Deployment.Runtime.values})
    if device not in Deployment.Device.values:
        raise ApplicationError(f"Unknown device {device!r}.", details={"device": Deployment.Device.values})
    if replicas < 1:
        raise ApplicationError("replicas must be at least 1.")
    workers = inference_workers()
    if not workers:
        raise ApplicationError(
            "No inference worker is running, so nothing could load this deployment. Start one "
            "(celery -A config worker -Q inference -P threads) and try again.",
            code="no_inference_worker")
    refusals = {w["name"]: runtime_supported(w, runtime, device) for w in workers}
    capable = [n for n, why in refusals.items() if why is None]
    if not capable:
        reasons = "; ".join(f"{n}: {why}" for n, why in refusals.items())
        raise ApplicationError(
            f"No inference worker can run {runtime} on {device} ({reasons}).",
            code="runtime_unavailable", details={"workers": refusals})
    if replicas > len(capable):
        raise ApplicationError(
            f"{replicas} replicas asked for, but only {len(capable)} running inference worker(s) "
            f"can run {runtime} on {device}.", code="not_enough_workers",
            details={"capable_workers": capable})
    with transaction.atomic():
        deployment = Deployment.objects.create(
            project_id=artifact.project_id, artifact=artifact, runtime=runtime, device=device,
            replicas=replicas, name=(name or f"{artifact.name} ({runtime}, {device})")[:200],
            created_by=user if user and user.is_authenticated else None,
        )
        transaction.on_commit(lambda: _enqueue_load(deployment.pk))
    return deployment


def _enqueue_load(deployment_id: int) -> None:
    """One worker loads the deployment and marks it ready (or failed, with the reason);
    every other inference worker preloads it in the background, since any of them may
    take its next request from the shared queue."""
    enqueue("deployments.tasks.deployment_load", deployment_id)
    _broadcast("tessera_preload_deployment", deployment_id=deployment_id)


def deployment_delete(*, deployment: Deployment) -> None:
    """Delete the deployment and its keys; workers unload the artifact when no other
    deployment uses it."""
    artifact_id = deployment.artifact_id
    with transaction.atomic():
        deployment.delete()
        if not Deployment.objects.filter(artifact_id=artifact_id).exists():
            transaction.on_commit(lambda: _broadcast_unload(artifact_id))


def _broadcast_unload(artifact_id: int) -> None:
    _broadcast("tessera_unload_artifact", artifact_id=artifact_id)


def _broadcast(command: str, **arguments: Any) -> None:
    """Tell every worker (control commands; inference workers act, others ignore it).
    Best effort: preloading and unloading are optimisations (lazy loads and the LRU cover
    a worker that missed it)."""
    try:
        app.control.broadcast(command, arguments=arguments)
    except Exception:  # noqa: BLE001
        logger.warning("could not broadcast %s %s", command, arguments, exc_info=True)

