"""Shared fixtures: API clients, and a real Celery worker process for asynchronous
behaviour (no eager mode). The worker is started against the test database, the same
Redis and the same media root as the test process."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.processes import stop_process_groups

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for() -> Callable:
    """client_for(user) -> an APIClient authenticated as that user."""

    def make(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


def _test_database_url() -> str:
    from django.db import connection

    cfg = connection.settings_dict
    if cfg["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(cfg['NAME']).resolve()}"
    host = cfg.get("HOST") or "127.0.0.1"
    port = cfg.get("PORT") or 5432
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    return f"postgres://{cfg['USER']}{password}@{host}:{port}/{cfg['NAME']}"


def wait_for_worker(name: str, timeout: float = 90.0) -> None:
    from config.celery_app import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(destination=[name], timeout=1.0) or []
        if any(name in reply for reply in replies):
            return
    raise RuntimeError(f"Celery worker {name} did not answer within {timeout}s")


@pytest.fixture(scope="session")
def start_celery_worker(django_db_setup, django_db_blocker) -> Iterator[Callable]:
    """start_celery_worker(queues=("default",), name=None, env=None, concurrency=1,
    pool="prefork") -> Popen.

    Starts `celery worker` as a separate process on the test database and waits until it
    answers a ping. Workers still running at the end of the session are stopped."""
    procs: list[subprocess.Popen] = []
    with django_db_blocker.unblock():
        database_url = _test_database_url()

    def start(queues=("default", "gpu", "inference"), name: str | None = None,
              env: dict | None = None, concurrency: int = 1,
              pool: str = "prefork") -> subprocess.Popen:
        name = name or f"test-{'-'.join(queues)}-{len(procs)}@tessera"
        worker_env = {**os.environ, "DATABASE_URL": database_url, **(env or {})}
        from django.conf import settings

        log = open(settings.VAR_DIR / f"worker-{name.split('@')[0]}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(queues),
             "-n", name, "-P", pool, "-c", str(concurrency), "-l", "info", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=worker_env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.worker_name = name  # type: ignore[attr-defined]
        procs.append(proc)
        wait_for_worker(name)
        return proc

    yield start
    stop_process_groups(procs)


@pytest.fixture(scope="session")
def celery_worker_process(start_celery_worker) -> subprocess.Popen:
    """One shared worker consuming every queue, for tests that only need tasks to run."""
    return start_celery_worker(name="shared@tessera")


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each websocket test runs its own event loop (asyncio.run, WebsocketCommunicator): give
    it its own channel layer, as channels_redis keeps per-loop state (locks, receive
    buffers) on the layer object ("Lock ... is bound to a different event loop")."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def stop_consuming(queue: str) -> list[str]:
    """Make every worker now taking tasks from ``queue`` stop (Celery's remote
    cancel_consumer), so that a worker started next is the one that gets them. Returns
    their names, for resume_consuming (workers that had already stopped are left out, so
    resuming does not bring them back)."""
    from config.celery_app import app

    active = app.control.inspect(timeout=1.0).active_queues() or {}
    names = [name for name, queues in active.items() if any(q["name"] == queue for q in queues)]
    if names:
        app.control.cancel_consumer(queue, destination=names, reply=True, timeout=2.0)
    return names


def resume_consuming(queue: str, names: list[str]) -> None:
    from config.celery_app import app

    if names:
        app.control.add_consumer(queue, destination=names, reply=True, timeout=2.0)


def wait_until(predicate: Callable[[], object], timeout: float = 60.0, interval: float = 0.1):
    """Poll until predicate() is truthy; return its value or fail with a clear message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 costs ~0.9 s per user on this CPU; tests need no real password hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
