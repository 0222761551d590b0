"""Standalone bundle: a zip that runs the model with only onnxruntime, numpy and Pillow.

Contents::

    model.onnx             the fp32 ONNX export (dynamic batch)
    classes.json           [{"index", "name", "color"}], index 0 = background
    preprocessing.json     resolution, mean, std and how resizing/postprocessing are done
    tessera.json           the artifact's metadata (metrics, run, workflow) for provenance
    tessera_processing.py  the numpy pre/postprocessing, the same file the platform runs
    predict.py             command line and ``SegmentationModel`` class
    README.md              how to run it
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

from . import processing
from .artifact import ArtifactMeta, load_model, read_meta

BUNDLE_FILES = Path(__file__).resolve().parent / "bundle_files"

_README = """# {title}

Semantic segmentation model exported from Tessera ({family}, variant `{variant}`).
Input images of any size are resized to {height}x{width}; output class maps have the
input's size.

## Run

    python -m venv .venv && . .venv/bin/activate
    pip install onnxruntime numpy pillow
    python predict.py image1.jpg image2.png --out masks/ --json

Each `masks/<image>.png` is a palette PNG: pixel value = class label below, colours =
class colours. `--json` prints the pixel area of each class per image.

From Python (in this folder):

    from predict import SegmentationModel, load_rgb
    model = SegmentationModel(".")
    class_map = model.predict([load_rgb("image1.jpg")])[0]   # (H, W) uint8

## Classes

| label | name | colour |
| --- | --- | --- |
{class_rows}

## Preprocessing

RGB, bilinear resize to {height}x{width} (half-pixel centres, no antialias), divide by 255,
subtract mean {mean}, divide by std {std}, NCHW float32. The model outputs logits
(N, {num_labels}, h, w); they are upsampled bilinearly to the image size and the argmax is
the class map. `tessera_processing.py` holds exactly this code.
"""


def build_bundle(
    onnx_path: str | Path, meta: ArtifactMeta, out_path: str | Path, *, title: str | None = None
) -> Path:
    """Write the bundle zip for an existing ONNX export (atomically).

    Args:
        onnx_path: fp32 ONNX file with input ``pixel_values`` (N,3,H,W) and output logits.
        meta: the artifact metadata.
        out_path: the zip to write.
        title: README heading (default: family and variant).
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    classes = [
        {"index": int(c["index"]), "name": c["name"], "color": c["color"]} for c in meta.classes
    ]
    preprocessing = {**meta.preprocessing(), "input": "pixel_values", "num_labels": meta.num_labels}
    readme = _README.format(
        title=title or f"Tessera {meta.family} {meta.variant}".strip(),
        family=meta.family,
        variant=meta.variant,
        height=meta.resolution[0],
        width=meta.resolution[1],
        mean=list(meta.mean),
        std=list(meta.std),
        num_labels=meta.num_labels,
        class_rows="\n".join(f"| {c['index']} | {c['name']} | {c['color']} |" for c in classes),
    )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".zip", dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            bundle.write(onnx_path, "model.onnx")
            bundle.writestr("classes.json", json.dumps(classes, indent=2))
            bundle.writestr("preprocessing.json", json.dumps(preprocessing, indent=2))
            bundle.writestr("tessera.json", json.dumps(meta.to_dict(), indent=2, default=str))
            bundle.write(processing.__file__, "tessera_processing.py")
            bundle.write(BUNDLE_FILES / "predict.py", "predict.py")
            bundle.writestr("README.md", readme)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def build_bundle_from_artifact(
    artifact_dir: str | Path, out_path: str | Path, *, cache_dir: str | Path | None = None
) -> Path:
    """Export (or reuse ``<cache_dir>/model.onnx``) and bundle an artifact directory."""
    from .export import export_onnx

    artifact_dir = Path(artifact_dir)
    meta = read_meta(artifact_dir)
    cache = Path(cache_dir) if cache_dir else artifact_dir / "exports"
    onnx_path = cache / "model.onnx"
    if not onnx_path.exists():
        model, meta = load_model(artifact_dir)
        export_onnx(model, meta, onnx_path)
    return build_bundle(onnx_path, meta, out_path)
