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
         "print(json.dumps([db['CONN_MAX_AGE'], db['CONN_HEALTH_CHECKS']]))")


def _db_settings(argv: list[str], **environ: str) -> list:
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": pythonpath, **environ}
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])


WEB = ["daphne", "config.asgi:application"]
WORKER = ["/venv/lib/celery/__main__.py", "-A", "config", "worker", "-Q", "inference"]


@pytest.mark.parametrize(("argv", "expected"), [(WEB, [0, True]), (WORKER, [60, True])])
def test_defaults_for_web_and_workers(argv, expected):
    assert _db_settings(argv) == expected


def test_environment_overrides_both():
    assert _db_settings(WEB, TESSERA_DB_CONN_MAX_AGE="300", TESSERA_DB_CONN_HEALTH_CHECKS="false") == [300, False]
    assert _db_settings(WORKER, TESSERA_DB_CONN_MAX_AGE="none") == [None, True]
    assert _db_settings(WORKER, TESSERA_DB_CONN_MAX_AGE="0") == [0, True]
