"""The run command's supervisor (issue 15, item 8) with real processes: a process that
crashes or is killed is logged and restarted with a growing back-off while the others
keep running; SIGTERM stops them all."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = """\
# a comment
steady: {py} -c "import os, time; print('steady pid', os.getpid(), flush=True); time.sleep(600)"
crasher: {py} -c "import sys, time; time.sleep(0.2); sys.exit(3)"
"""


def test_crashed_and_killed_processes_are_restarted_with_backoff(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(PROCFILE.format(py=sys.executable))
    log = tmp_path / "node.log"
    with log.open("w") as out:
        node = subprocess.Popen([sys.executable, "-m", "config.supervisor", str(procfile)],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "TESSERA_RESTART_BACKOFF_S": "0.3",
                                     "TESSERA_RESTART_BACKOFF_MAX_S": "1.2"})
    try:
        def steady_pids() -> list[int]:
            return [int(p) for p in re.findall(r"steady +\| steady pid (\d+)", log.read_text())]

        first = wait_until(steady_pids, timeout=30)[0]
        wait_until(lambda: "restart #4" in log.read_text(), timeout=30)
        os.kill(first, signal.SIGKILL)  # e.g. the kernel's OOM killer
        wait_until(lambda: len(steady_pids()) == 2, timeout=30)
        assert node.poll() is None  # the node is still up
        text = log.read_text()
        delays = [float(d) for d in re.findall(r"crasher +\| exited with code 3 after [\d.]+s; "
                                               r"restart #\d+ in ([\d.]+)s", text)]
        assert delays[:4] == [0.3, 0.6, 1.2, 1.2]  # doubling, capped
        assert re.search(r"steady +\| killed by signal 9 after [\d.]+s; restart #1 in 0.3s", text)
        second = steady_pids()[1]
    finally:
        node.send_signal(signal.SIGTERM)
        assert node.wait(timeout=30) == 0
    time.sleep(0.2)
    assert not Path(f"/proc/{second}").exists()  # stopped with the node
