"""Probe latency and persistent database connections, through daphne.

A real web process (daphne, the embedded redis-server, no Celery worker) is started once
per variant of ``TESSERA_DB_CONN_MAX_AGE`` (0: a connection per request; 60: kept for a
minute, checked before reuse). Each variant answers, one request at a time over one
keep-alive connection:

  /api/v1/health/live/   the liveness probe (touches nothing)
  /api/v1/health/ready/  the readiness probe (one database and one Redis round trip)
  /api/v1/health/        the full report (it waits for worker replies; a few calls only)
  /api/v1/projects/      a list endpoint with token auth (50 projects)

and, on PostgreSQL, how many server connections the web process holds afterwards
(pg_stat_activity), which shows whether kept connections are reused or pile up.

Usage:  python benchmarks/web_probes_db.py [--database-url postgres://postgres@127.0.0.1:5432/h9bench]
        [--requests 300]
Without --database-url it runs on the embedded SQLite. Writes
benchmarks/results/web_probes_db.json and prints a summary.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _wait_port(port: int, timeout: float = 120) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port}")


def _timings(conn: HTTPConnection, path: str, headers: dict[str, str], count: int) -> dict:
    samples, statuses = [], {}
    for _ in range(count):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        samples.append((time.perf_counter() - started) * 1000)
        statuses[response.status] = statuses.get(response.status, 0) + 1
    samples.sort()
    return {"requests": count, "statuses": statuses, "p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 2),
            "mean_ms": round(statistics.fmean(samples), 2)}


def _pg_connections(database_url: str) -> int | None:
    if not database_url.startswith("postgres"):
        return None
    import psycopg2

    name = database_url.rsplit("/", 1)[1]
    with psycopg2.connect(database_url.rsplit("/", 1)[0] + "/postgres") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND application_name NOT LIKE 'psql%%'", [name])
        return cur.fetchone()[0] - 0


def _prepare_postgres(database_url: str) -> None:
    import psycopg2

    name = database_url.rsplit("/", 1)[1]
    conn = psycopg2.connect(database_url.rsplit("/", 1)[0] + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--health-requests", type=int, default=5)
    parser.add_argument("--conn-max-age", default="0,60")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tessera-bench-web-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TESSERA_VAR_DIR": str(work / "var"),
           "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    if args.database_url:
        _prepare_postgres(args.database_url)
        env["DATABASE_URL"] = args.database_url
    os.environ.update(env)
    from config.embedded import free_port, redis_url_ensured
    from tests.processes import stop_process_groups

    results: dict = {"variants": {}}
    with redis_url_ensured(work / "var") as redis_url:
        env["REDIS_URL"] = redis_url
        import django

        django.setup()
        from django.core.management import call_command
        from rest_framework.authtoken.models import Token

        from projects import services as project_services
        from tests import factories

        call_command("migrate", verbosity=0)
        owner = factories.user_create("bench")
        for i in range(50):
            project_services.project_create(user=owner, name=f"project {i}")
        token = Token.objects.create(user=owner).key
        from django.db import connections

        connections.close_all()
        auth = {"Authorization": f"Token {token}", "Host": "localhost"}
        for max_age in args.conn_max_age.split(","):
            port = free_port()
            log = open(work / f"web-{max_age}.log", "w")  # noqa: SIM115
            proc = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                cwd=ROOT, env={**env, "TESSERA_DB_CONN_MAX_AGE": max_age}, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
            try:
                _wait_port(port)
                conn = HTTPConnection("127.0.0.1", port, timeout=60)
                _timings(conn, "/api/v1/projects/", auth, 20)  # warm-up
                variant = {
                    "live": _timings(conn, "/api/v1/health/live/", {"Host": "localhost"}, args.requests),
                    "ready": _timings(conn, "/api/v1/health/ready/", {"Host": "localhost"}, args.requests),
                    "full_health": _timings(conn, "/api/v1/health/", {"Host": "localhost"},
                                            args.health_requests),
                    "project_list": _timings(conn, "/api/v1/projects/", auth, args.requests),
                    "db_connections_after": _pg_connections(args.database_url),
                }
                conn.close()
            finally:
                stop_process_groups([proc])
            _log(f"CONN_MAX_AGE={max_age}: " + ", ".join(
                f"{k} p50 {v['p50_ms']} ms" for k, v in variant.items() if isinstance(v, dict))
                + f"; connections held {variant['db_connections_after']}")
            results["variants"][f"conn_max_age={max_age}"] = variant
    results.update({
        "database": "postgresql" if args.database_url else "sqlite",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "note": "sequential requests over one keep-alive HTTP connection; no Celery worker runs, "
                "so the full report waits its whole worker-reply timeout",
    })
    out = ROOT / "benchmarks" / "results" / "web_probes_db.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
