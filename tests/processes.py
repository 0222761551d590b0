"""Stopping the server and worker processes that tests and benchmarks start."""
from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable


def stop_process_groups(procs: Iterable[subprocess.Popen], timeout: float = 20) -> None:
    """SIGTERM each still running process group (each was started with
    ``start_new_session=True``), then SIGKILL the ones that do not exit in ``timeout`` s."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
