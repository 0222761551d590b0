"""Runs the processes of one node (platform/Procfile) and keeps them running. Django-free.

A process that exits while the node is up is logged and started again after a back-off
(``backoff_start_s``, doubling up to ``backoff_max_s``; reset once a process has stayed up
for ``stable_after_s``): one crashed worker is not the end of the node, as it was under
honcho, which stopped every process when one ended. SIGTERM or Ctrl-C stops them all
(SIGTERM to each process group, SIGKILL after ``stop_timeout_s``).

    python -m config.supervisor platform/Procfile     # what `make run` (scripts/up.py) does
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("tessera.supervisor")


def read_procfile(path: Path) -> dict[str, str]:
    """``name: command`` lines (comments and blank lines skipped), in file order."""
    programs: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            name, command = line.split(":", 1)
            programs[name.strip()] = command.strip()
    return programs


@dataclass
class _Process:
    name: str
    command: str
    popen: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    backoff_s: float = 0.0
    restarts: int = 0
    pump: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, programs: dict[str, str], *, cwd: Path | None = None,
                 env: dict[str, str] | None = None, backoff_start_s: float = 1.0,
                 backoff_max_s: float = 60.0, stable_after_s: float = 30.0,
                 stop_timeout_s: float = 20.0) -> None:
        self.processes = [_Process(name, command) for name, command in programs.items()]
        self.cwd, self.env = cwd, env
        self.backoff_start_s, self.backoff_max_s = backoff_start_s, backoff_max_s
        self.stable_after_s, self.stop_timeout_s = stable_after_s, stop_timeout_s
        self.width = max((len(p.name) for p in self.processes), default=0)
        self._stopping = threading.Event()

    def _say(self, name: str, text: str) -> None:
        sys.stdout.write(f"{time.strftime('%H:%M:%S')} {name:<{self.width}} | {text}\n")
        sys.stdout.flush()

    def _start(self, proc: _Process) -> None:
        # exec: the shell is replaced by the command, so signals reach the process itself.
        proc.popen = subprocess.Popen(["/bin/sh", "-c", f"exec {proc.command}"], cwd=self.cwd,
                                      env=self.env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        proc.started_at, proc.restart_at = time.monotonic(), None
        self._say(proc.name, f"started (pid {proc.popen.pid})")
        proc.pump = threading.Thread(target=self._pump, args=(proc.name, proc.popen), daemon=True)
        proc.pump.start()

    def _pump(self, name: str, popen: subprocess.Popen) -> None:
        assert popen.stdout is not None
        for raw in iter(popen.stdout.readline, b""):
            self._say(name, raw.decode(errors="replace").rstrip())

    def _exited(self, proc: _Process, code: int) -> None:
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        uptime = time.monotonic() - proc.started_at
        if uptime >= self.stable_after_s:
            proc.backoff_s = self.backoff_start_s
        else:
            proc.backoff_s = min(self.backoff_max_s, max(self.backoff_start_s, proc.backoff_s * 2))
        proc.restart_at = time.monotonic() + proc.backoff_s
        proc.restarts += 1
        message = (f"{how} after {uptime:.1f}s; restart #{proc.restarts} in {proc.backoff_s:.1f}s")
        self._say(proc.name, message)
        logger.error("%s %s", proc.name, message)

    def run(self) -> int:
        """Start every process and keep them up until ``stop()``, SIGTERM or Ctrl-C."""
        previous = signal.signal(signal.SIGTERM, lambda *_: self.stop())
        try:
            for proc in self.processes:
                self._start(proc)
            while not self._stopping.wait(0.2):
                for proc in self.processes:
                    if proc.restart_at is not None:
                        if time.monotonic() >= proc.restart_at:
                            self._start(proc)
                    elif proc.popen is not None and (code := proc.popen.poll()) is not None:
                        self._exited(proc, code)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            self._stop_all()
        return 0

    def stop(self) -> None:
        self._stopping.set()

    def _stop_all(self) -> None:
        running = [p.popen for p in self.processes if p.popen is not None and p.popen.poll() is None]
        for popen in running:
            try:
                os.killpg(popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.stop_timeout_s
        for popen in running:
            try:
                popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
        for proc in self.processes:
            if proc.pump is not None:
                proc.pump.join(timeout=2)


def supervisor_for(procfile: Path, *, cwd: Path) -> Supervisor:
    """The node's supervisor: back-off from TESSERA_RESTART_BACKOFF_S (1) doubling up to
    TESSERA_RESTART_BACKOFF_MAX_S (60)."""
    return Supervisor(read_procfile(procfile), cwd=cwd,
                      backoff_start_s=float(os.environ.get("TESSERA_RESTART_BACKOFF_S", "1")),
                      backoff_max_s=float(os.environ.get("TESSERA_RESTART_BACKOFF_MAX_S", "60")))


def main(argv: list[str]) -> int:
    return supervisor_for(Path(argv[0] if argv else "platform/Procfile"), cwd=Path.cwd()).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
