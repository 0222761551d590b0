"""Live training metrics: how long from the worker writing a metric point to a websocket
client holding it, on a real node (embedded Redis, daphne, one Celery worker).

The run logs every step (log_interval=1) of a tiny SegFormer on CPU. A websocket client
(`websockets`, token auth) follows `/ws/trainings/<id>/` and stamps each live
`training.metric` event on arrival; the latency of a point is arrival time minus the
point's ``created_at`` (when the worker inserted the row; the event is published right
after that commit) - or minus ``values["published_at"]`` when the training service puts
one there. Both ends run on this machine, so they read the same clock.

Baseline in the same run: a client polling `GET /trainings/<id>/metrics/?after=<id>`
once a second (what a page without the websocket would do).

Usage:  python benchmarks/live_metrics_latency.py [--steps 300] [--poll-s 1.0]
Writes benchmarks/results/live_metrics_latency.json and prints the same figures.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import requests
from PIL import Image
from pycocotools import mask as mask_util

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from projects.synthetic import SYNTHETIC_CLASSES, make_dataset  # noqa: E402
from tests.browser.server import PASSWORD, USERNAME, start_server  # noqa: E402

CONFIG = {
    "family": "segformer", "variant": "tiny", "resolution": [64, 64], "batch_size": 8,
    "lr": 3e-3, "schedule": "constant", "pretrained": "none", "log_interval": 1,
    "eval_interval": 100, "checkpoint_every_n_steps": 0, "keep_last_k": 1,
}


def _png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def _seed(http: requests.Session, base: str, images: int) -> int:
    """A labelled synthetic project through the API; returns its id."""
    pid = http.post(f"{base}/projects/", json={"name": "latency", "type": "segmentation"}).json()["id"]
    classes = [http.post(f"{base}/projects/{pid}/classes/", json={"name": n, "color": c}).json()
               for n, c in SYNTHETIC_CLASSES]
    for i, sample in enumerate(make_dataset(images, seed=5, sizes=[(64, 64)])):
        res = http.post(f"{base}/projects/{pid}/assets/",
                        files={"files": (f"s{i}.png", _png(sample.image), "image/png")})
        res.raise_for_status()
        asset = res.json()["created"][0]["id"]
        if i % 4 == 3:
            http.patch(f"{base}/assets/{asset}/", json={"split": "val"}).raise_for_status()
        masks = []
        for inst in sample.instances:
            rle = mask_util.encode(np.asfortranarray(inst.mask.astype(np.uint8)))
            masks.append({"class_id": classes[inst.class_index]["id"],
                          "rle": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}})
        http.put(f"{base}/assets/{asset}/masks/", json={"masks": masks}).raise_for_status()
    return pid


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class WsClient(threading.Thread):
    """Follows the run's websocket and records (point id, step, values, arrival time)."""

    def __init__(self, url: str, origin: str) -> None:
        super().__init__(daemon=True)
        self.url, self.origin = url, origin
        self.live_from: float | None = None  # after the replay: the first status event
        self.arrivals: list[tuple[int, int, dict, float]] = []
        self.finished = threading.Event()
        self.connected = threading.Event()

    def run(self) -> None:
        from websockets.sync.client import connect

        with connect(self.url, origin=self.origin, open_timeout=30) as ws:
            self.connected.set()
            for raw in ws:
                now = time.time()
                event = json.loads(raw)
                if event["type"] == "training.status":
                    if self.live_from is None:
                        self.live_from = now
                    if event["payload"]["status"] in ("completed", "failed", "cancelled"):
                        break
                elif event["type"] == "training.metric":
                    p = event["payload"]
                    self.arrivals.append((p["id"], p["step"], p["values"], now))
        self.finished.set()


class Poller(threading.Thread):
    """The baseline: GET /metrics/?after=<last id> every period."""

    def __init__(self, http: requests.Session, url: str, period_s: float) -> None:
        super().__init__(daemon=True)
        self.http, self.url, self.period_s = http, url, period_s
        self.arrivals: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        after = 0
        while not self.stop.is_set():
            points = self.http.get(self.url, params={"after": after, "kind": "train"}).json()
            now = time.time()
            for p in points:
                self.arrivals.setdefault(p["id"], now)
                after = max(after, p["id"])
            self.stop.wait(self.period_s)


def _stats(values: list[float]) -> dict:
    a = np.asarray(values) * 1000.0
    return {"count": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1), "max_ms": round(float(a.max()), 1),
            "mean_ms": round(float(a.mean()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--poll-s", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the worker")
    args = parser.parse_args()

    os.environ["TESSERA_TORCH_THREADS"] = str(args.threads)
    server = start_server(Path(tempfile.mkdtemp(prefix="tessera-latency-")))
    try:
        base = f"{server.url}/api/v1"
        token = requests.post(f"{base}/auth/token/", json={"username": USERNAME, "password": PASSWORD}).json()["token"]
        http = requests.Session()
        http.headers["Authorization"] = f"Token {token}"
        pid = _seed(http, base, args.images)
        workflow = http.post(f"{base}/projects/{pid}/workflows/", json={
            "name": "latency", "config": {**CONFIG, "steps": args.steps}}).json()
        run = http.post(f"{base}/trainings/", json={"workflow": workflow["id"]}).json()
        ws_url = server.url.replace("http://", "ws://") + f"/ws/trainings/{run['id']}/?last_step=-1&token={token}"
        client = WsClient(ws_url, origin=server.url)
        client.start()
        client.connected.wait(30)
        poller = Poller(http, f"{base}/trainings/{run['id']}/metrics/", args.poll_s)
        poller.start()
        started = time.time()
        if not client.finished.wait(args.steps * 2 + 120):
            raise SystemExit("the run did not finish in time")
        elapsed = time.time() - started
        poller.stop.set()
        poller.join(10)
        final = http.get(f"{base}/trainings/{run['id']}/").json()
        points = {p["id"]: p for p in http.get(f"{base}/trainings/{run['id']}/metrics/", params={"kind": "train"}).json()}
    finally:
        server.stop()

    live = [(pid_, step, values, t) for pid_, step, values, t in client.arrivals
            if client.live_from is not None and pid_ in points and _ts(points[pid_]["created_at"]) >= client.live_from]
    ws_latency = [t - _ts(points[pid_]["created_at"]) for pid_, _s, _v, t in live]
    published = [t - float(v["published_at"]) for _p, _s, v, t in live if isinstance(v.get("published_at"), (int, float))]
    poll_latency = [poller.arrivals[i] - _ts(points[i]["created_at"]) for i in points if i in poller.arrivals
                    and _ts(points[i]["created_at"]) >= (client.live_from or 0)]
    steps_seen = [s for _p, s, _v, _t in client.arrivals]
    result = {
        "benchmark": "live_metrics_latency",
        "what": "worker inserts a MetricPoint (created_at) -> websocket client receives the training.metric event",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "run": {"status": final["status"], "steps": args.steps, "log_interval": 1,
                "images_per_second": final["images_per_second"], "wall_s": round(elapsed, 1),
                "metric_events": len(client.arrivals), "train_points_in_db": len(points),
                "duplicate_steps": len(steps_seen) - len(set(steps_seen)),
                "missing_steps": len(set(p["step"] for p in points.values()) - set(steps_seen))},
        "websocket_from_created_at": _stats(ws_latency) if ws_latency else None,
        "websocket_from_published_at": _stats(published) if published else None,
        "baseline_polling": {"period_s": args.poll_s, **(_stats(poll_latency) if poll_latency else {})},
        "target": {"p95_ms": 500},
    }
    result["target"]["met"] = bool(ws_latency) and result["websocket_from_created_at"]["p95_ms"] <= 500
    out = ROOT / "benchmarks" / "results" / "live_metrics_latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
