"""`make test`: run the whole test suite.

Uses DATABASE_URL / REDIS_URL when set (as CI does: PostgreSQL and Redis); otherwise
SQLite and the embedded redis-server. Extra arguments go to pytest."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.embedded import redis_url_ensured  # noqa: E402


def main() -> int:
    os.chdir(ROOT)
    # A suite's own state (SQLite, media, embedded Redis, logs) lives under its var dir, so
    # two suites with different TESSERA_VAR_DIR never see each other's files.
    var_dir = Path(os.environ.setdefault("TESSERA_VAR_DIR", str(ROOT / "var" / "test-run")))
    os.environ.setdefault("TESSERA_MEDIA_ROOT", str(var_dir / "media"))
    os.environ.setdefault("TESSERA_CACHE_PREFIX", "tessera-test")
    os.environ.setdefault("TESSERA_CHANNELS_PREFIX", "asgi-test")
    with redis_url_ensured(var_dir):
        return subprocess.call([sys.executable, "-m", "pytest", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
