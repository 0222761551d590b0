"""Persistent database connections: the defaults differ for web and Celery workers, and
both are set from the environment (before/after figures: benchmarks/web_probes_db.py)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = ("import sys; sys.argv = {argv!r}; import django; django.setup(); "
         "from django.conf import settings; import json; db = settings.DATABASES['default']; "
         "print(json.dumps([db['CONN_MAX_AGE'], db['CONN_HEALTH_CHECKS'], settings.CELERY_DB_REUSE_MAX]))")


def _db_settings(argv: list[str], **environ: str) -> list:
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": pythonpath, **environ}
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=120).stdout
    max_age, health_checks, celery_reuse = json.loads(out.strip().splitlines()[-1])
    # Celery closes connections around each task unless told not to: only when they are kept.
    assert (celery_reuse is None) == (max_age == 0)
    return [max_age, health_checks]


WEB = ["daphne", "config.asgi:application"]
WORKER = ["/venv/lib/celery/__main__.py", "-A", "config", "worker", "-Q", "inference"]


@pytest.mark.parametrize(("argv", "expected"), [(WEB, [0, True]), (WORKER, [60, True])])
def test_defaults_for_web_and_workers(argv, expected):
    assert _db_settings(argv) == expected


def test_environment_overrides_both():
    assert _db_settings(WEB, TESSERA_DB_CONN_MAX_AGE="300", TESSERA_DB_CONN_HEALTH_CHECKS="false") == [300, False]
    assert _db_settings(WORKER, TESSERA_DB_CONN_MAX_AGE="none") == [None, True]
    assert _db_settings(WORKER, TESSERA_DB_CONN_MAX_AGE="0") == [0, True]


@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_its_connection_between_tasks(start_celery_worker, request):
    """PostgreSQL only (the server lists its connections): a default-queue worker runs
    tasks that query the database; its one server connection outlives them."""
    from django.db import connection

    from config.celery_app import app
    from tests.conftest import _test_database_url, resume_consuming, stop_consuming, wait_until

    if connection.vendor != "postgresql":
        pytest.skip("counts the server's connections: PostgreSQL only")
    name = f"tessera-keep-{os.getpid()}"
    earlier = stop_consuming("default")
    request.addfinalizer(lambda: resume_consuming("default", earlier))
    start_celery_worker(queues=("default",), name="db-keep@tessera",
                        env={"DATABASE_URL": f"{_test_database_url()}?application_name={name}"})

    def backends() -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [name])
            return sorted(row[0] for row in cursor.fetchall())

    def run_tasks(count: int) -> None:
        for _ in range(count):
            app.send_task("training.tasks.training_runs_recover")
        wait_until(lambda: app.connection().default_channel.client.llen("default") == 0, timeout=60)

    run_tasks(5)
    first = wait_until(backends, timeout=30)
    run_tasks(20)
    wait_until(lambda: backends() == first, timeout=30)
    assert len(first) == 1  # the pool process's one connection, the same server process throughout
