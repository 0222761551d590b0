"""Write frontend/src/__fixtures__/rle.json: masks and pycocotools' encodings of them.

Run with the project's venv:  .venv/bin/python frontend/scripts/make_rle_fixtures.py
Each case gives the mask either as `bits` (base64 of np.packbits of the row-major H x W mask)
or as `rects` ([x0, y0, x1, y1] exclusive, filled) for large sizes, plus what pycocotools
computes for it: the compressed `counts` string, `area` and `bbox` ([x, y, w, h]).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_util

OUT = Path(__file__).resolve().parents[1] / "src" / "__fixtures__" / "rle.json"


def uncompressed_counts(mask: np.ndarray) -> list[int]:
    """Column-major runs starting with zeros (independent of pycocotools, cross-checked below)."""
    flat = mask.flatten(order="F").astype(np.uint8)
    if flat.size == 0:
        return [0]
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0, *runs]
    return runs


def case(name: str, mask: np.ndarray, rects: list[list[int]] | None = None) -> dict:
    mask = mask.astype(np.uint8)
    h, w = mask.shape
    rle = mask_util.encode(np.asfortranarray(mask))
    counts = rle["counts"].decode("ascii")
    raw = uncompressed_counts(mask)
    again = mask_util.frPyObjects({"size": [h, w], "counts": raw}, h, w)
    assert again["counts"].decode("ascii") == counts, name
    assert np.array_equal(mask_util.decode(rle), mask), name
    out: dict = {
        "name": name,
        "size": [h, w],
        "counts": counts,
        "area": int(mask_util.area(rle)),
        "bbox": [int(round(v)) for v in mask_util.toBbox(rle).tolist()],
    }
    if rects is not None:
        out["rects"] = rects
    else:
        out["bits"] = base64.b64encode(np.packbits(mask.reshape(-1)).tobytes()).decode("ascii")
        out["uncompressed"] = raw
    return out


def main() -> None:
    rng = np.random.default_rng(1234)
    cases: list[dict] = []
    cases.append(case("empty 7x5", np.zeros((7, 5))))
    cases.append(case("full 7x5", np.ones((7, 5))))
    cases.append(case("single pixel at origin", np.pad(np.ones((1, 1)), ((0, 9), (0, 9)))))
    cases.append(case("single pixel at end", np.pad(np.ones((1, 1)), ((9, 0), (9, 0)))))
    cases.append(case("one row", (rng.random((1, 50)) > 0.5)))
    cases.append(case("one column", (rng.random((50, 1)) > 0.5)))
    for density in (0.02, 0.5, 0.97):
        cases.append(case(f"random {density}", rng.random((31, 47)) < density))
    yy, xx = np.mgrid[0:120, 0:160]
    disc = (xx - 70) ** 2 + (yy - 50) ** 2 < 35**2
    cases.append(case("disc", disc))
    ring = disc & ~((xx - 70) ** 2 + (yy - 50) ** 2 < 15**2)
    cases.append(case("ring", ring))
    stripes = (xx // 3) % 2 == 0
    cases.append(case("vertical stripes", stripes))
    cases.append(case("horizontal stripes", (yy // 2) % 2 == 1))
    blob = np.zeros((300, 400), dtype=bool)
    for _ in range(12):
        cx, cy, r = rng.integers(0, 400), rng.integers(0, 300), rng.integers(5, 80)
        blob |= (np.mgrid[0:300, 0:400][1] - cx) ** 2 + (np.mgrid[0:300, 0:400][0] - cy) ** 2 < r * r
    cases.append(case("blobs 300x400", blob))
    # Large images: long runs need many 5-bit groups and negative differences.
    for name, (h, w), rects in [
        ("4000x3000 two boxes", (3000, 4000), [[10, 20, 3990, 2980], [100, 0, 101, 3000]]),
        ("4000x3000 thin", (3000, 4000), [[3999, 2999, 4000, 3000], [0, 0, 1, 1]]),
        ("1x100000 long row", (1, 100000), [[5, 0, 99990, 1]]),
    ]:
        m = np.zeros((h, w), dtype=np.uint8)
        for x0, y0, x1, y1 in rects:
            m[y0:y1, x0:x1] = 1
        cases.append(case(name, m, rects))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"generator": "pycocotools", "cases": cases}, separators=(",", ":")))
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
