"""Uploading a folder with the SDK (`tessera upload`) vs a plain one-file-per-request loop.

A real node (embedded Redis, daphne, SQLite; no worker, so thumbnails only queue up) and
a folder of mixed images (PNG and JPEG, 64..640 px a side). In the same run:

  (a) baseline: a `requests` loop posting one file per request, one after the other
      (what a curl-based script does);
  (b) the SDK's upload_folder with 1 and with 4 parallel requests (8 files per request);
  (c) resume: the SDK run again on the complete project (files are hashed and skipped
      without being sent) vs the baseline loop again (every file sent, the server
      answers "duplicate").

Usage:  python benchmarks/sdk_upload.py [--images 120]
Writes benchmarks/results/sdk_upload.json and prints a summary.
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "sdk"))

from tessera import Client  # noqa: E402

from tests.browser.server import PASSWORD, USERNAME, start_server  # noqa: E402


def make_folder(folder: Path, count: int) -> int:
    rng = np.random.default_rng(0)
    total = 0
    for i in range(count):
        w, h = (int(v) for v in rng.integers(64, 641, 2))
        image = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        image = np.asarray(Image.fromarray(image).resize((w, h)))  # smooth: realistic sizes
        buf = io.BytesIO()
        fmt, ext = ("JPEG", "jpg") if i % 3 == 0 else ("PNG", "png")
        Image.fromarray(image).save(buf, format=fmt)
        (folder / f"img_{i:04d}.{ext}").write_bytes(buf.getvalue())
        total += len(buf.getvalue())
    return total


def baseline(url: str, token: str, project: int, folder: Path) -> float:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    start = time.perf_counter()
    for path in sorted(folder.iterdir()):
        r = session.post(f"{url}/api/v1/projects/{project}/assets/",
                         files={"files": (path.name, path.read_bytes())})
        assert r.status_code in (201, 207), r.text
    return time.perf_counter() - start


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=120)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sdk-upload-"))
    total_bytes = make_folder(folder, args.images)
    server = start_server(worker=False)
    try:
        client = Client.login(server.url, USERNAME, PASSWORD)
        new = lambda name: client.projects.create(name).id  # noqa: E731
        p_base, p_one, p_four = new("baseline"), new("sdk x1"), new("sdk x4")
        t_base = baseline(server.url, client.token, p_base, folder)
        t_one, r_one = timed(lambda: client.assets.upload_folder(p_one, folder, workers=1))
        t_four, r_four = timed(lambda: client.assets.upload_folder(p_four, folder, workers=4))
        assert len(r_one.created) == len(r_four.created) == args.images
        t_resume, r_resume = timed(lambda: client.assets.upload_folder(p_four, folder, workers=4))
        assert len(r_resume.skipped) == args.images and not r_resume.created
        t_base_again = baseline(server.url, client.token, p_base, folder)
    finally:
        server.stop()
    result = {
        "images": args.images, "megabytes": round(total_bytes / 1e6, 2),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "seconds": {"baseline_one_per_request": round(t_base, 3), "sdk_workers_1": round(t_one, 3),
                    "sdk_workers_4": round(t_four, 3), "sdk_resume_all_present": round(t_resume, 3),
                    "baseline_resend_all_present": round(t_base_again, 3)},
        "images_per_s": {"baseline": round(args.images / t_base, 1),
                         "sdk_workers_1": round(args.images / t_one, 1),
                         "sdk_workers_4": round(args.images / t_four, 1)},
        "speedup_sdk4_vs_baseline": round(t_base / t_four, 2),
        "resume_speedup_vs_resend": round(t_base_again / t_resume, 2),
    }
    out = ROOT / "benchmarks" / "results" / "sdk_upload.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
