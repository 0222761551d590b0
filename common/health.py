"""Health checks: database, Redis, Celery workers per queue, storage. Each returns
`{"ok": bool, ...}` and never raises, so one broken part does not hide the others.

Two cheap probes sit beside the full report, for orchestrators that call them every few
seconds (Kubernetes, a load balancer): `liveness` checks nothing beyond the process
answering (restarting a web process does not mend a database), `readiness` asks the
database and Redis one round trip each with short timeouts. Neither pings workers or
writes to storage; the full report (`health_report`, ~2 s: it waits for worker replies)
stays at /api/v1/health/."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection


def _timed(check: Callable[[], dict]) -> dict:
    started = time.perf_counter()
    try:
        result = {"ok": True, **check()}
    except Exception as exc:  # noqa: BLE001 - the error is the report
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def check_redis() -> dict:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    client.ping()
    return {"version": client.info("server").get("redis_version")}


def check_workers(timeout: float = 1.5) -> dict:
    """Ask every worker which queues it consumes (a broadcast answered within timeout)."""
    from config.celery_app import QUEUES, app

    replies = app.control.inspect(timeout=timeout).active_queues() or {}
    queues: dict[str, list[str]] = {q: [] for q in QUEUES}
    for worker, worker_queues in replies.items():
        for q in worker_queues:
            queues.setdefault(q["name"], []).append(worker)
    missing = [q for q in QUEUES if not queues[q]]
    if missing:
        raise RuntimeError(f"no worker consumes queue(s) {', '.join(missing)}; workers: {queues}")
    return {"queues": queues}


def check_storage() -> dict:
    name = default_storage.save(f"health/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    try:
        with default_storage.open(name, "rb") as fh:
            if fh.read() != b"ok":
                raise RuntimeError("storage returned different bytes than were written")
    finally:
        default_storage.delete(name)
    return {"backend": type(default_storage._wrapped).__name__}


_probe_clients: dict = {}


def _probe_redis_client():
    """One Redis client (and connection pool) per process and URL for the readiness probe."""
    client = _probe_clients.get(settings.REDIS_URL)
    if client is None:
        import redis

        client = _probe_clients[settings.REDIS_URL] = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
    return client


def liveness() -> dict:
    return {"ok": True}


def readiness() -> dict:
    """Can this process serve requests: the database and Redis each answer one round trip."""
    checks = {
        "database": _timed(check_database),
        "redis": _timed(lambda: {"ping": bool(_probe_redis_client().ping())}),
    }
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}


def health_report() -> dict:
    checks = {
        "database": _timed(check_database),
        "redis": _timed(check_redis),
        "workers": _timed(check_workers),
        "storage": _timed(check_storage),
    }
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}
