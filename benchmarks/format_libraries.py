"""Tessera's own readers vs. the libraries that could do the work (issue 16: "prefer a
well-kept library where it does the work right, after measuring"):

  * datumaro 1.13 (what CVAT uses) reading CVAT for images 1.1 and VOC segmentation
    exports it wrote itself, masks materialized, vs. annotator.formats.cvat /
    semantic_png on the same files; exactness = pixel agreement of the class maps;
  * label-studio-converter 0.0.59's brush codec (brush.mask2rle / decode_rle) vs.
    annotator.formats.label_studio's: equal bytes, equal masks, time.

The libraries are not Tessera dependencies: run this with a Python that has them and
the repository on the path (annotator.formats is Django-free)::

    python -m venv /tmp/tools && /tmp/tools/bin/pip install datumaro==1.13.12 \\
        label-studio-converter==0.0.59 pycocotools
    /tmp/tools/bin/python benchmarks/format_libraries.py [--images 200] [--objects 10]

Writes benchmarks/results/format_libraries.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotator.formats import rle as rlelib  # noqa: E402
from annotator.formats.cvat import read_cvat  # noqa: E402
from annotator.formats.label_studio import brush_decode, brush_encode  # noqa: E402
from annotator.formats.semantic_png import read_semantic_png  # noqa: E402


def _shapes(rng, h, w, k):
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for _ in range(k):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(4, h / 6), rng.uniform(4, w / 6)
        out.append(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def bench_datumaro(n: int, k: int, h: int = 480, w: int = 640) -> dict:
    import datumaro as dm
    from datumaro.components.annotation import AnnotationType, Mask, Polygon
    from datumaro.components.media import Image as DmImage

    rng = np.random.default_rng(0)
    classes = ["a", "b", "c", "d"]
    items = []
    for i in range(n):
        anns = []
        for j, m in enumerate(_shapes(rng, h, w, k)):
            if j % 2:
                anns.append(Mask(image=m, label=j % 4, id=j))
            else:  # a polygon: the ellipse's outline, 24 points
                cy, cx = np.argwhere(m).mean(axis=0) if m.any() else (h / 2, w / 2)
                t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
                pts = np.stack([cx + 20 * np.cos(t), cy + 12 * np.sin(t)], 1).reshape(-1).tolist()
                anns.append(Polygon(pts, label=j % 4, id=j))
        items.append(dm.DatasetItem(id=f"im{i:04d}", subset="train",
                                    media=DmImage.from_numpy(np.zeros((h, w, 3), np.uint8)), annotations=anns))
    dataset = dm.Dataset.from_iterable(items, categories=classes)
    out = {"images": n, "objects_per_image": k, "image_size": [h, w]}
    for fmt, ours in (("cvat", read_cvat), ("voc_segmentation", read_semantic_png)):
        with tempfile.TemporaryDirectory() as tmp:
            dataset.export(tmp, fmt, save_media=True)
            files = _files(Path(tmp))

            def with_datumaro(tmp=tmp, fmt=fmt):
                ds = dm.Dataset.import_from(tmp, fmt)
                ds.transform("polygons_to_masks")
                names = ds.categories()[AnnotationType.label]
                maps = {}
                for item in ds:
                    class_map = np.zeros((h, w), np.uint8)
                    for a in item.annotations:
                        if a.type == AnnotationType.mask and names[a.label].name in classes:
                            class_map[a.image.astype(bool)] = classes.index(names[a.label].name) + 1
                    maps[item.id.split("/")[-1]] = class_map
                return maps

            def with_ours(files=files, ours=ours):
                parsed = ours(files)
                assert not parsed.problems, parsed.problems[:3]
                maps = {}
                for image in parsed.images:
                    class_map = np.zeros((image.height, image.width), np.uint8)
                    for inst in image.instances:  # same painting order as datumaro: list order
                        class_map[rlelib.decode(inst.rle)] = classes.index(inst.class_name) + 1
                    maps[image.file_name.rsplit(".", 1)[0]] = class_map
                return maps

            dm_s, dm_maps = _timed(with_datumaro)
            our_s, our_maps = _timed(with_ours)
            agree = np.mean([(dm_maps[key] == our_maps[key]).mean() for key in dm_maps])
            out[fmt] = {"datumaro_s": round(dm_s, 3), "tessera_s": round(our_s, 3),
                        "speedup": round(dm_s / our_s, 2), "pixel_agreement": round(float(agree), 6)}
    return out


def bench_brush(sides: list[int]) -> dict:
    from label_studio_converter import brush

    rng = np.random.default_rng(1)
    out = {}
    for side in sides:
        masks = _shapes(rng, side, side, 5)
        mask = np.logical_or.reduce(masks)
        ref_enc_s, ref = _timed(lambda mask=mask: brush.mask2rle((mask * 255).astype(np.uint8)))
        our_enc_s, ours = _timed(lambda mask=mask: brush_encode(mask))
        ref_dec_s, ref_mask = _timed(lambda ref=ref, side=side: brush.decode_rle(ref).reshape(side, side, 4)[:, :, 3] > 0)
        our_dec_s, our_mask = _timed(lambda ref=ref, side=side: brush_decode(ref, side, side))
        out[f"{side}x{side}"] = {
            "bytes_equal": ref == ours, "masks_equal": bool(np.array_equal(ref_mask, our_mask) and np.array_equal(our_mask, mask)),
            "encode_ms": {"converter": round(ref_enc_s * 1000, 1), "tessera": round(our_enc_s * 1000, 1)},
            "decode_ms": {"converter": round(ref_dec_s * 1000, 1), "tessera": round(our_dec_s * 1000, 1)},
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--objects", type=int, default=10)
    args = parser.parse_args()
    result = {"datumaro": bench_datumaro(args.images, args.objects),
              "label_studio_brush": bench_brush([256, 1024, 2048])}
    path = ROOT / "benchmarks" / "results" / "format_libraries.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
