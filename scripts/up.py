"""`make run`: bring the whole platform up on one machine.

Starts the embedded Redis when REDIS_URL is unset, applies migrations, creates the demo
user and project, then runs web + workers from platform/Procfile under config.supervisor,
which restarts a process that dies (with back-off, logged) and stops them all on Ctrl-C."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.embedded import redis_url_ensured  # noqa: E402
from config.supervisor import supervisor_for  # noqa: E402


def main() -> int:
    os.chdir(ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("TESSERA_PORT", "8000")
    os.environ.setdefault("TESSERA_HOST", "127.0.0.1")
    var_dir = Path(os.environ.get("TESSERA_VAR_DIR", ROOT / "var"))
    port = int(os.environ.get("TESSERA_REDIS_PORT", "0")) or None
    python = sys.executable
    with redis_url_ensured(var_dir, port) as redis_url:
        try:
            subprocess.run([python, "manage.py", "migrate", "--noinput"], check=True)
            subprocess.run([python, "manage.py", "seed_demo"], check=True)
            print(f"\nTessera on http://{os.environ['TESSERA_HOST']}:{os.environ['TESSERA_PORT']}/ "
                  f"(API docs at /api/v1/docs/, Redis at {redis_url})\n", flush=True)
            bin_dir = str(Path(python).parent)
            os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
            # Ctrl-C or SIGTERM stops web and workers before the embedded Redis goes away;
            # a process that dies meanwhile is logged and restarted with back-off.
            return supervisor_for(ROOT / "platform" / "Procfile", cwd=ROOT).run()
        except KeyboardInterrupt:
            return 0

if __name__ == "__main__":
    sys.exit(main())
