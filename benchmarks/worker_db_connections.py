"""Persistent database connections in a Celery worker: task run time with
``TESSERA_DB_CONN_MAX_AGE`` 0 (a connection per task) and 60 (kept between tasks).

A real worker (prefork, one process, the ``default`` queue) on PostgreSQL and the
embedded redis-server runs ``training.tasks.training_runs_recover`` (one query over the
active runs, as beat sends it) ``--tasks`` times. Figures: the run time of each task as
the worker logs it ("succeeded in ... s": Django's connection is opened inside the task
when it is not kept), p50 and p95, and the server connections the worker holds after.

Usage:  python benchmarks/worker_db_connections.py --database-url postgres://postgres@127.0.0.1:5432/h9bench
Writes benchmarks/results/worker_db_connections.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.web_probes_db import _log, _pg_connections, _prepare_postgres  # noqa: E402

RUN = re.compile(r"training_runs_recover\[[0-9a-f-]+\] succeeded in ([0-9.e-]+)s")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tessera-bench-worker-"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "TESSERA_VAR_DIR": str(work / "var"), "DJANGO_SETTINGS_MODULE": "config.settings",
           "DATABASE_URL": args.database_url}
    env.pop("REDIS_URL", None)
    _prepare_postgres(args.database_url)
    os.environ.update(env)
    from config.embedded import redis_url_ensured
    from tests.processes import stop_process_groups

    results: dict = {"tasks": args.tasks, "variants": {}}
    with redis_url_ensured(work / "var") as redis_url:
        env["REDIS_URL"] = redis_url
        import django

        django.setup()
        from django.core.management import call_command

        from config.celery_app import app

        call_command("migrate", verbosity=0)
        from django.db import connections

        connections.close_all()  # count only the worker's connections
        for round_ in range(args.rounds):  # alternating: the shared machine's load drifts
            for max_age in ("0", "60"):
                log = open(work / f"worker-{max_age}.log", "w")  # noqa: SIM115
                proc = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default", "-c", "1",
                     "-n", f"bench-{max_age}@%h", "-l", "info", "--without-gossip", "--without-mingle",
                     "--without-heartbeat"],
                    cwd=ROOT, env={**env, "TESSERA_DB_CONN_MAX_AGE": max_age}, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)
                try:
                    for _ in range(args.tasks + 1):  # the first one opens the worker's connection
                        app.send_task("training.tasks.training_runs_recover")
                    deadline = time.monotonic() + 300
                    while True:
                        runs = [float(x) for x in RUN.findall((work / f"worker-{max_age}.log").read_text())]
                        if len(runs) > args.tasks or time.monotonic() > deadline:
                            break
                        time.sleep(0.5)
                    held = _pg_connections(args.database_url)
                finally:
                    stop_process_groups([proc])
                runs = sorted(runs[1:]) or [float("nan")]
                entry = results["variants"].setdefault(f"conn_max_age={max_age}", {"rounds": []})
                entry["rounds"].append({"tasks": len(runs), "p50_ms": round(statistics.median(runs) * 1000, 2),
                                        "p95_ms": round(runs[int(0.95 * (len(runs) - 1))] * 1000, 2),
                                        "db_connections_held": held})
                _log(f"round {round_}: CONN_MAX_AGE={max_age}: {entry['rounds'][-1]}")
    out = ROOT / "benchmarks" / "results" / "worker_db_connections.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
