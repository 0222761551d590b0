"""Dataset management at scale: what the platform's split and bulk paths cost over the
plain database work inside them.

  * auto-split of N labelled assets (stratified by class presence, seeded) vs. a plain
    script: read the ids, shuffle, three UPDATEs;
  * bulk "move to val" of every asset matching a filter through POST .../assets/bulk/
    (in-process API client) vs. one UPDATE of the same rows;
  * the asset summary (counts per split and status, the val check) through the API;
  * bulk delete of M assets with their image files, thumbnails and masks (local disk)
    vs. deleting the same rows and unlinking the same files directly.

Runs on its own SQLite database in a temporary folder.
Usage:  python benchmarks/dataset_ops.py [--assets 10000] [--delete 1000]
Writes benchmarks/results/dataset_ops.json and prints the same figures.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_TMP = tempfile.mkdtemp(prefix="tessera-bench-dataset-")
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
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from annotator.models import MaskRevision, MaskSet  # noqa: E402
from projects import services  # noqa: E402
from projects.models import Asset, LabelClass  # noqa: E402

RLE = {"size": [4, 4], "counts": "04L4"}


def _populate(project, n: int, classes: list[LabelClass], *, files: bool = False) -> list[int]:
    """n assets (rows; with small stored files when ``files``), each labelled with 1-3
    classes (one revision each)."""
    rng = random.Random(0)
    now = timezone.now()
    assets = []
    for i in range(n):
        name = f"a{i}.png"
        asset = Asset(project=project, name=name, sha256=f"{project.pk}-{i}", width=4, height=4,
                      status=Asset.Status.LABELED)
        if files:
            asset.file.name = default_storage.save(f"assets/bench/{name}", ContentFile(b"x" * 64))
            asset.thumbnail.name = default_storage.save(f"thumbnails/bench/{i}.jpg", ContentFile(b"t"))
        assets.append(asset)
    with transaction.atomic():
        Asset.objects.bulk_create(assets, batch_size=1000)
        revisions = MaskRevision.objects.bulk_create([
            MaskRevision(asset=a, number=1, created_at=now, instance_count=1, instances=[
                {"class_id": c.id, "rle": RLE} for c in rng.sample(classes, rng.randint(1, 3))])
            for a in assets], batch_size=1000)
        MaskSet.objects.bulk_create([MaskSet(asset=a, revision=r, updated_at=now)
                                     for a, r in zip(assets, revisions, strict=True)], batch_size=1000)
    return [a.id for a in assets]


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--delete", type=int, default=1_000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password="x")
    project = services.project_create(user=user, name="bench")
    classes = [services.label_class_create(project=project, name=f"c{i}") for i in range(6)]
    ids = _populate(project, args.assets, classes)
    client = APIClient()
    client.force_authenticate(user)
    client.get("/api/v1/projects/")  # the first request imports every app's views (torch...)
    results: dict = {"assets": args.assets, "delete": args.delete, "machine": platform.machine(),
                     "python": platform.python_version()}

    ratios = {"train": 0.8, "val": 0.1, "test": 0.1}
    platform_s = _timed(lambda: services.assets_auto_split(project=project, ratios=ratios, seed=1))

    def plain_split() -> None:
        pks = list(Asset.objects.filter(project=project).values_list("id", flat=True))
        random.Random(1).shuffle(pks)
        cut1, cut2 = int(0.8 * len(pks)), int(0.9 * len(pks))
        with transaction.atomic():
            for split, chunk in (("train", pks[:cut1]), ("val", pks[cut1:cut2]), ("test", pks[cut2:])):
                for start in range(0, len(chunk), 500):
                    Asset.objects.filter(id__in=chunk[start:start + 500]).update(split=split)

    baseline_s = _timed(plain_split)
    results["auto_split"] = {"platform_s": round(platform_s, 3), "plain_s": round(baseline_s, 3),
                             "ratio": round(platform_s / baseline_s, 2)}

    url = f"/api/v1/projects/{project.id}/assets/bulk/"
    platform_s = _timed(lambda: client.post(url, {"action": "set_split", "filter": {}, "split": "val"},
                                            format="json"))
    baseline_s = _timed(lambda: Asset.objects.filter(project=project).update(split="train"))
    results["bulk_move_all"] = {"platform_s": round(platform_s, 3), "plain_s": round(baseline_s, 3),
                                "ratio": round(platform_s / baseline_s, 2)}

    summary = f"/api/v1/projects/{project.id}/assets/summary/"
    client.get(summary)
    runs = [_timed(lambda: client.get(summary)) for _ in range(5)]
    results["summary_ms"] = round(1000 * sorted(runs)[2], 1)

    # Bulk delete with files: the platform path vs. rows + files removed directly.
    doomed = _populate(services.project_create(user=user, name="doomed"), args.delete, classes, files=True)
    doomed_project = Asset.objects.get(pk=doomed[0]).project
    platform_s = _timed(lambda: client.post(f"/api/v1/projects/{doomed_project.id}/assets/bulk/",
                                            {"action": "delete", "ids": doomed}, format="json"))
    left = sum(1 for _ in (Path(_TMP) / "media").rglob("*.png")) + sum(
        1 for _ in (Path(_TMP) / "media").rglob("*.jpg"))
    plain = _populate(services.project_create(user=user, name="plain"), args.delete, classes, files=True)

    def plain_delete() -> None:
        rows = list(Asset.objects.filter(id__in=plain).values_list("file", "thumbnail"))
        Asset.objects.filter(id__in=plain).delete()
        for names in rows:
            for name in names:
                os.unlink(default_storage.path(name))

    baseline_s = _timed(plain_delete)
    results["bulk_delete_with_files"] = {"platform_s": round(platform_s, 3), "plain_s": round(baseline_s, 3),
                                         "ratio": round(platform_s / baseline_s, 2), "files_left": left}
    assert len(ids) == args.assets

    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "dataset_ops.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
