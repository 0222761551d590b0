"""Masks and dataset formats: how much the platform adds to the pycocotools work inside.

  * import of a COCO file with N images x K objects (compressed RLE), images matched by
    file name to assets already in the project: the whole import job (read, check every
    RLE, match, write revisions) vs. the plain work of a script reading the same file
    (json.loads + pycocotools decode of every RLE);
  * export of the same project as COCO (labels only): the platform's export vs. the plain
    work (pycocotools area + toBbox of every RLE + json.dumps of the document);
  * saving one 2048x2048 asset with 20 instances through PUT /api/v1/assets/{id}/masks/
    (in-process API client: auth, JSON, checks, one revision) vs. pycocotools encode and
    decode of the same 20 masks.

Runs on its own SQLite database in a temporary folder (nothing needs Redis).
Usage:  python benchmarks/masks_io.py [--images 1000] [--objects 10] [--saves 30]
Writes benchmarks/results/masks_io.json and prints the same figures.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_TMP = tempfile.mkdtemp(prefix="tessera-bench-masks-")
os.environ["TESSERA_VAR_DIR"] = _TMP
os.environ["TESSERA_MEDIA_ROOT"] = str(Path(_TMP) / "media")
os.environ["DATABASE_URL"] = f"sqlite:///{_TMP}/bench.sqlite3"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402
from django.core.files.storage import default_storage  # noqa: E402
from django.core.management import call_command  # noqa: E402
from pycocotools import mask as cocomask  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from annotator import services  # noqa: E402
from annotator.formats import rle as rlelib  # noqa: E402
from projects import services as project_services  # noqa: E402
from projects.models import Asset, Job  # noqa: E402


def _shapes(rng: np.random.Generator, h: int, w: int, k: int) -> list[np.ndarray]:
    """k filled ellipses of random size and place (overlapping, touching, any size)."""
    yy, xx = np.mgrid[0:h, 0:w]
    masks = []
    for _ in range(k):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(4, h / 4), rng.uniform(4, w / 4)
        masks.append(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0)
    return masks


def _timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_import_export(n_images: int, k: int, h: int = 480, w: int = 640) -> dict:
    user = get_user_model().objects.create_user("bench", password="x")
    project = project_services.project_create(user=user, name="bench")
    for name in ("a", "b", "c", "d"):
        project_services.label_class_create(project=project, name=name)
    Asset.objects.bulk_create([
        Asset(project=project, name=f"img{i:05d}.jpg", file=f"assets/img{i:05d}.jpg",
              sha256=f"{i:064x}", width=w, height=h) for i in range(n_images)])
    rng = np.random.default_rng(0)
    pool = [rlelib.encode(m) for m in _shapes(rng, h, w, 200)]  # 200 distinct shapes, reused
    doc = {"images": [{"id": i + 1, "file_name": f"img{i:05d}.jpg", "width": w, "height": h}
                      for i in range(n_images)],
           "categories": [{"id": c + 1, "name": n} for c, n in enumerate("abcd")],
           "annotations": [{"id": i * k + j + 1, "image_id": i + 1, "category_id": 1 + (i + j) % 4,
                            "iscrowd": 0, "segmentation": pool[(i * 7 + j * 13) % len(pool)]}
                           for i in range(n_images) for j in range(k)]}
    data = json.dumps(doc).encode()

    def plain_read():
        loaded = json.loads(data)
        for ann in loaded["annotations"]:
            seg = ann["segmentation"]
            cocomask.decode({"size": seg["size"], "counts": seg["counts"].encode()})

    def platform_import():
        path = default_storage.save("imports/bench/labels.json", ContentFile(data))
        job = project_services.job_create(project=project, user=user, kind="import",
                                          params={"format": "coco", "name": "labels.json", "path": path})
        services.import_run(job=job)
        job.refresh_from_db()
        assert job.status == Job.Status.SUCCEEDED, job.errors[:3]

    plain_import_s = _timed(plain_read)
    import_s = _timed(platform_import)

    def plain_export():
        anns = []
        for ann in doc["annotations"]:
            raw = {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()}
            anns.append({**ann, "area": int(cocomask.area(raw)), "bbox": cocomask.toBbox(raw).tolist()})
        json.dumps({**doc, "annotations": anns})

    def platform_export():
        with tempfile.TemporaryFile() as fh:
            services.export_write(out=fh, project=project, format="coco", include_images=False)

    plain_export_s = _timed(plain_export)
    export_s = _timed(platform_export)
    return {
        "images": n_images, "objects_per_image": k, "image_size": [h, w],
        "coco_file_mb": round(len(data) / 1e6, 2),
        "import_s": round(import_s, 3), "import_plain_pycocotools_s": round(plain_import_s, 3),
        "import_ratio": round(import_s / plain_import_s, 2),
        "export_s": round(export_s, 3), "export_plain_pycocotools_s": round(plain_export_s, 3),
        "export_ratio": round(export_s / plain_export_s, 2),
    }


def bench_save(saves: int, side: int = 2048, k: int = 20) -> dict:
    user = get_user_model().objects.create_user("saver", password="x")
    project = project_services.project_create(user=user, name="save")
    classes = [project_services.label_class_create(project=project, name=f"c{i}") for i in range(4)]
    asset = Asset.objects.create(project=project, name="big.png", file="assets/big.png",
                                 sha256="f" * 64, width=side, height=side)
    masks = _shapes(np.random.default_rng(1), side, side, k)
    encoded = [rlelib.encode(m) for m in masks]
    body = {"masks": [{"class_id": classes[i % 4].id, "rle": r} for i, r in enumerate(encoded)]}
    client = APIClient()
    client.force_authenticate(user)
    url = f"/api/v1/assets/{asset.id}/masks/"
    assert client.put(url, body, format="json").status_code == 200  # warm-up: imports, caches
    times = []
    for _ in range(saves):
        start = time.perf_counter()
        response = client.put(url, body, format="json")
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.content[:300]
    fortran = [np.asfortranarray(m.astype(np.uint8)) for m in masks]
    raw = [{"size": r["size"], "counts": r["counts"].encode()} for r in encoded]
    encode_s = _timed(lambda: [cocomask.encode(m) for m in fortran], repeat=5)
    decode_s = _timed(lambda: [cocomask.decode(r) for r in raw], repeat=5)
    return {
        "size": [side, side], "instances": k, "saves": saves,
        "rle_chars_total": sum(len(r["counts"]) for r in encoded),
        "save_p50_ms": round(1000 * statistics.median(times), 1),
        "save_p90_ms": round(1000 * float(np.percentile(times, 90)), 1),
        "pycocotools_encode_20_ms": round(1000 * encode_s, 1),
        "pycocotools_decode_20_ms": round(1000 * decode_s, 1),
        "save_p50_over_decode": round(statistics.median(times) / decode_s, 2),
        "target_ms": 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=10)
    parser.add_argument("--saves", type=int, default=30)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "coco": bench_import_export(args.images, args.objects),
        "mask_save": bench_save(args.saves),
    }
    out = ROOT / "benchmarks" / "results" / "masks_io.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
