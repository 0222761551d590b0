"""Health checks: database, Redis, Celery workers per queue, storage. Each returns
`{"ok": bool, ...}` and never raises, so one broken part does not hide the others."""
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


def health_report() -> dict:
    checks = {
        "database": _timed(check_database),
        "redis": _timed(check_redis),
        "workers": _timed(check_workers),
        "storage": _timed(check_storage),
    }
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}
