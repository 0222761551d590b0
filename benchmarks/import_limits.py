"""What hostile imports cost now (issue 15.1, 15.4): peak memory and time of

* a zip bomb (1 GiB of zeros in ~4.6 MB) in the web process's path (open the zip, check
  its directory, detect the format) against the old path (every member inflated);
* the tiny LabelMe files declaring 100000^2 and 30000^2 images, and the COCO file
  declaring 1e9^2, through the readers (the old reader drew a canvas of the declared
  size first: 17 GB, and 2.8 GB / 9 s for 30000^2).

Each case runs in a fresh process (peak RSS from getrusage). Writes
benchmarks/results/import_limits.json.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASE = r'''
import json, resource, sys, time, zipfile
sys.path.insert(0, {root!r})
from annotator.formats import FORMATS, READERS
from annotator.formats.dataset import UploadError, open_upload
path, case = {path!r}, {case!r}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
outcome = ""
if case == "inflate_all":  # the old read_upload: every member read into memory
    with zipfile.ZipFile(path) as z:
        files = {{i.filename: z.read(i) for i in z.infolist()}}
    outcome = f"{{sum(map(len, files.values()))}} bytes inflated"
elif case == "web_path":
    try:
        with open(path, "rb") as fh:
            files = open_upload("bomb.zip", fh, budget=64 << 20)
            outcome = str([d.name for d in FORMATS.detect(files)])
    except UploadError as exc:
        outcome = f"refused: {{exc}}"
else:
    data = open(path, "rb").read()
    parsed = READERS[case]({{"x.json": data}})
    outcome = "; ".join(p.code for p in parsed.problems)
print(json.dumps({{"seconds": time.perf_counter() - t, "outcome": outcome,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_growth_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024}}))
'''


def _run(path: Path, case: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CASE.format(root=str(ROOT), path=str(path), case=case)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _bomb(size: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("set/a.json", json.dumps({"shapes": [], "imagePath": "a.png", "imageHeight": 8,
                                                   "imageWidth": 8, "imageData": None}))
        with archive.open("set/notes.json", "w", force_zip64=True) as member:
            chunk = b" " * (16 << 20)
            for _ in range(size // len(chunk)):
                member.write(chunk)
    return out.getvalue()


def _labelme(side: int) -> bytes:
    return json.dumps({"version": "5.5.0", "flags": {}, "imagePath": "x.png", "imageData": None,
                       "imageHeight": side, "imageWidth": side, "shapes": [
                           {"label": "x", "points": [[0, 0], [side - 1, 0], [side - 1, side - 1]],
                            "group_id": None, "shape_type": "polygon", "flags": {}}]}).encode()


def main() -> None:
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        bomb = Path(tmp) / "bomb.zip"
        started = time.perf_counter()
        bomb.write_bytes(_bomb(1 << 30))
        results["bomb"] = {"zip_bytes": bomb.stat().st_size, "declared_bytes": 1 << 30,
                           "build_seconds": time.perf_counter() - started}
        results["bomb_web_path"] = _run(bomb, "web_path")
        results["bomb_inflate_all_baseline"] = _run(bomb, "inflate_all")
        for side in (100_000, 30_000):
            path = Path(tmp) / f"labelme{side}.json"
            path.write_bytes(_labelme(side))
            results[f"labelme_{side}"] = {"file_bytes": path.stat().st_size, **_run(path, "labelme")}
        coco = Path(tmp) / "coco.json"
        coco.write_bytes(json.dumps({
            "images": [{"id": 1, "file_name": "x.png", "width": 10**9, "height": 10**9}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                             "segmentation": [[0, 0, 10**9, 0, 10**9, 10**9]]}],
            "categories": [{"id": 1, "name": "x"}]}).encode())
        results["coco_1e9"] = {"file_bytes": coco.stat().st_size, **_run(coco, "coco")}
    out = ROOT / "benchmarks" / "results" / "import_limits.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
