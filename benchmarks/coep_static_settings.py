"""Settings for benchmarks/intellibrush_browser.py's multithreaded run: config.settings with
the cross-origin isolation middleware moved in front of WhiteNoise, so static files (ORT's
.mjs worker script) carry Cross-Origin-Embedder-Policy too. Chromium refuses to start a
worker without it on an isolated page, so onnxruntime-web can only use threads this way."""

from config.settings import *  # noqa: F403
from config.settings import MIDDLEWARE as _BASE

_COI = "common.middleware.CrossOriginIsolationMiddleware"
MIDDLEWARE = [_COI, *[m for m in _BASE if m != _COI]]
