"""A throwaway Tessera node for the SDK's tests (sdk/tests/), which run in a virtualenv of
their own and so start the node through this module with the server's Python:

    .venv/bin/python -m tests.sdk.serve     # prints one JSON line: url, username, password

It serves the API (no frontend build needed) with one Celery worker on every queue, and
stops when its standard input closes or on SIGTERM."""
from __future__ import annotations

import json
import signal
import sys
import threading

from tests.browser.server import PASSWORD, USERNAME, start_server

# The worker is shared by training, inference and imports: no SAM embeddings ahead of time.
SDK_TEST_ENV = {"TESSERA_SAM_PRECOMPUTE": "false", "TESSERA_TORCH_THREADS": "1",
                "TESSERA_INFERENCE_THREADS": "1"}


def main() -> None:
    server = start_server(extra_env=SDK_TEST_ENV)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print(json.dumps({"url": server.url, "username": USERNAME, "password": PASSWORD,
                      "var_dir": str(server.var_dir)}), flush=True)
    try:
        stop.wait()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
