"""Masks and dataset formats: how much the platform adds to the pycocotools work inside.

  * import of a COCO file with N images x K objects (compressed RLE), images matched by
    file name to assets already in the project: the whole import job (read, check every
    RLE, match, write revisions) vs. the plain work of a script reading the same file
    (json.loads + pycocotools decode of every RLE);
  * export of the same project as COCO (labels only): the platform's export vs. the plain
    work (pycocotools area + toBbox of every RLE + json.dumps of the document);
  * saving one 2048x2048 asset with 20 instances through PUT /api/v1/assets/{id}/masks/
    (in-process API client: auth, JSON, checks, one revision) vs. pycocotools encode and
    decode of the same 20 masks;
  * the newer formats (semantic PNG, CVAT XML, Label Studio JSON, Roboflow COCO): the same
    project exported through each writer (labels only), then the whole import job of that
    export vs. the plain COCO read above (json.loads + pycocotools decode of every RLE);
  * import from S3 (moto's S3 server in its own process) of --s3-images images with
    --objects objects each: the whole job (list, read labels, download and check each
    image, store it, write revisions) vs. a plain script doing the same downloads and the
    pycocotools decode of every RLE; with the peak memory (RSS) of each.

Runs on its own SQLite database in a temporary folder (nothing needs Redis).
Usage:  python benchmarks/masks_io.py [--images 1000] [--objects 10] [--saves 30]
                                     [--s3-images 10000] [--skip-s3]
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


def bench_new_formats(n_images: int, k: int, h: int = 480, w: int = 640) -> dict:
    """Each newer format's import job (labels only, images matched by name) vs. the plain
    pycocotools read of the same objects as COCO."""
    from annotator.formats import WRITERS

    user = get_user_model().objects.create_user("formats", password="x")
    source = project_services.project_create(user=user, name="formats-source")
    classes = [project_services.label_class_create(project=source, name=n) for n in "abcd"]
    Asset.objects.bulk_create([
        Asset(project=source, name=f"img{i:05d}.jpg", file=f"assets/f{i:05d}.jpg",
              sha256=f"{i + 10**6:064x}", width=w, height=h) for i in range(n_images)])
    rng = np.random.default_rng(0)
    pool = [rlelib.encode(m) for m in _shapes(rng, h, w, 200)]
    assets = list(Asset.objects.filter(project=source).order_by("id"))
    saves = [services._Save(a, [{"class_id": classes[(i + j) % 4].id, "rle": pool[(i * 7 + j * 13) % len(pool)]}
                                for j in range(k)]) for i, a in enumerate(assets)]
    services._write_mask_sets(saves, user=None, source="import")
    rles = [inst["rle"] for s in saves for inst in s.instances]

    def plain_read():
        loaded = json.loads(json.dumps(rles))
        for seg in loaded:
            cocomask.decode({"size": seg["size"], "counts": seg["counts"].encode()})

    plain_s = _timed(plain_read)
    out = {"images": n_images, "objects_per_image": k, "plain_pycocotools_read_s": round(plain_s, 3)}
    for format in WRITERS:
        files = dict(services.export_entries(project=source, format=format, include_images=False))
        target = project_services.project_create(user=user, name=f"formats-{format}")
        Asset.objects.bulk_create([
            Asset(project=target, name=f"img{i:05d}.jpg", file=f"assets/f{i:05d}.jpg",
                  sha256=f"{i + 10**6:064x}", width=w, height=h) for i in range(n_images)])
        import io
        import zipfile

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            for path, data in files.items():
                archive.writestr(path, data)

        def platform_import(target=target, buf=buf, format=format):
            path = default_storage.save("imports/bench/labels.zip", ContentFile(buf.getvalue()))
            job = project_services.job_create(project=target, user=user, kind="import",
                                              params={"format": format, "name": "labels.zip", "path": path})
            services.import_run(job=job)
            job.refresh_from_db()
            assert job.status == Job.Status.SUCCEEDED, job.errors[:3]

        read_s = _timed(lambda format=format, files=files: services.READERS[format](files))
        import_s = _timed(platform_import)
        out[format] = {"labels_mb": round(len(buf.getvalue()) / 1e6, 2), "read_s": round(read_s, 3),
                       "import_s": round(import_s, 3), "import_ratio": round(import_s / plain_s, 2)}
        if format == "semantic_png":  # its plain work: decode each class map, encode each class
            from PIL import Image

            def plain_png(files=files):
                for path, data in files.items():
                    if path.endswith(".png"):
                        labels = np.asarray(Image.open(io.BytesIO(data)))
                        for value in np.unique(labels)[1:]:
                            cocomask.encode(np.asfortranarray((labels == value).astype(np.uint8)))

            png_s = _timed(plain_png)
            out[format].update({"plain_png_decode_and_encode_s": round(png_s, 3),
                                "import_ratio_to_png_plain": round(import_s / png_s, 2)})
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_during(fn) -> tuple[float, float, float]:
    """(seconds, RSS at the start, peak RSS while fn ran) in MB, RSS sampled every 20 ms."""
    import threading

    peak, done = [_rss_mb()], threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], _rss_mb())

    start_rss = peak[0]
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    return seconds, start_rss, max(peak[0], _rss_mb())


def bench_s3_import(n_images: int, k: int, h: int = 48, w: int = 64) -> dict:
    """Import of n_images (h x w PNGs, each k objects) from moto's S3 server in another
    process, vs. the plain downloads + pycocotools decode, with the RSS of this process
    at the start and at its peak during each."""
    import io
    import subprocess

    import boto3
    from django.conf import settings
    from PIL import Image

    from config.embedded import free_port

    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench")
        for _ in range(100):
            try:
                client.create_bucket(Bucket="bench")
                break
            except Exception:
                time.sleep(0.1)
        rng = np.random.default_rng(3)
        pool = [rlelib.encode(m) for m in _shapes(rng, h, w, 100)]
        doc = {"images": [], "annotations": [], "categories": [{"id": 5, "name": "cell"}, {"id": 9, "name": "dot"}]}
        upload_start = time.perf_counter()
        for i in range(n_images):
            out = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(out, format="PNG")
            client.put_object(Bucket="bench", Key=f"set/images/train/im{i:05d}.png", Body=out.getvalue())
            doc["images"].append({"id": i + 1, "file_name": f"im{i:05d}.png", "width": w, "height": h})
            doc["annotations"] += [{"id": i * k + j + 1, "image_id": i + 1, "category_id": (5, 9)[j % 2],
                                    "iscrowd": 0, "segmentation": pool[(i * 7 + j * 13) % len(pool)]}
                                   for j in range(k)]
        client.put_object(Bucket="bench", Key="set/annotations/instances_train.json", Body=json.dumps(doc).encode())
        upload_s = time.perf_counter() - upload_start
        del doc

        def plain():
            keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="set/")
                    for o in page.get("Contents", [])]
            labels = json.loads(client.get_object(Bucket="bench", Key="set/annotations/instances_train.json")["Body"].read())
            for ann in labels["annotations"]:
                seg = ann["segmentation"]
                cocomask.decode({"size": seg["size"], "counts": seg["counts"].encode()})
            for key in keys:
                if key.endswith(".png"):
                    client.get_object(Bucket="bench", Key=key)["Body"].read()

        plain_s, plain_rss_start, plain_rss_peak = _peak_rss_during(plain)
        settings.TESSERA_IMPORT_S3_BUCKETS = ["bench"]
        settings.TESSERA_IMPORT_S3_ENDPOINT_URL = endpoint
        settings.TESSERA_IMPORT_S3_REGION = "us-east-1"
        settings.TESSERA_IMPORT_S3_ACCESS_KEY_ID = settings.TESSERA_IMPORT_S3_SECRET_ACCESS_KEY = "bench"
        # thumbnails are a separate background job, not part of the import
        project_services._enqueue_thumbnail = lambda asset_id: None
        user = get_user_model().objects.create_user("s3bench", password="x")
        project = project_services.project_create(user=user, name="s3")
        progress_updates = []
        original = project_services.job_progress

        def counting_progress(**kwargs):
            progress_updates.append(kwargs["progress"])
            return original(**kwargs)

        services.project_services.job_progress = counting_progress

        def platform():
            job = services.import_start_s3(project=project, user=user, bucket="bench", prefix="set/", format="coco")
            services.import_run(job=job)
            job.refresh_from_db()
            assert job.status == Job.Status.SUCCEEDED, job.errors[:3]

        import_s, import_rss_start, import_rss_peak = _peak_rss_during(platform)
        services.project_services.job_progress = original
        return {
            "images": n_images, "objects_per_image": k, "image_size": [h, w],
            "upload_to_moto_s": round(upload_s, 1),
            "import_s": round(import_s, 2), "plain_download_and_decode_s": round(plain_s, 2),
            "import_ratio": round(import_s / plain_s, 2),
            "progress_updates": len(progress_updates),
            "plain_rss_mb_start_peak": [round(plain_rss_start, 1), round(plain_rss_peak, 1)],
            "import_rss_mb_start_peak": [round(import_rss_start, 1), round(import_rss_peak, 1)],
            "import_rss_growth_mb": round(import_rss_peak - import_rss_start, 1),
        }
    finally:
        server.terminate()
        server.wait(10)


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
    parser.add_argument("--s3-images", type=int, default=10000)
    parser.add_argument("--skip-s3", action="store_true")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "coco": bench_import_export(args.images, args.objects),
        "mask_save": bench_save(args.saves),
        "new_formats": bench_new_formats(args.images, args.objects),
    }
    if not args.skip_s3:
        result["s3_import"] = bench_s3_import(args.s3_images, args.objects)
    out = ROOT / "benchmarks" / "results" / "masks_io.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
