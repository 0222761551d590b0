"""Run a Tessera segmentation model exported as ONNX.

Needs only onnxruntime, numpy and Pillow. From the unpacked bundle directory:

    python predict.py photo.jpg other.png --out masks/     # writes masks/<name>.png
    python predict.py photo.jpg --json                     # prints per-class areas

Each output PNG is a palette image whose pixel values are model labels
(0 = background, i = classes.json entry i) and whose palette holds the class colours.

From Python:

    from predict import SegmentationModel
    model = SegmentationModel(".")                 # the bundle directory
    class_maps = model.predict([rgb_uint8_array])  # list of (H, W) uint8
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tessera_processing import postprocess, preprocess  # noqa: E402


class SegmentationModel:
    """The bundled model: RGB uint8 images (any size) -> uint8 class maps of the same size."""

    def __init__(
        self, bundle_dir: str | Path = HERE, providers: list[str] | None = None, threads: int = 0
    ) -> None:
        bundle_dir = Path(bundle_dir)
        self.settings = json.loads((bundle_dir / "preprocessing.json").read_text())
        self.classes = json.loads((bundle_dir / "classes.json").read_text())
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(bundle_dir / "model.onnx"),
            sess_options=options,
            providers=providers or ["CPUExecutionProvider"],
        )
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Class maps (H, W) uint8 for RGB uint8 images (H, W, 3)."""
        if not images:
            return []
        batch = preprocess(
            images, self.settings["resolution"], self.settings["mean"], self.settings["std"]
        )
        (logits,) = self.session.run(None, {self.input_name: batch})
        return postprocess(
            np.asarray(logits, dtype=np.float32), [image.shape[:2] for image in images]
        )

    def palette_png(self, class_map: np.ndarray, path: str | Path) -> None:
        """Write a class map as a palette PNG coloured with the class colours."""
        palette: list[int] = []
        for entry in self.classes:
            value = entry["color"].lstrip("#")
            palette.extend(int(value[i : i + 2], 16) for i in (0, 2, 4))
        data = np.ascontiguousarray(class_map, dtype=np.uint8)
        image = Image.frombytes("P", (data.shape[1], data.shape[0]), data.tobytes())
        image.putpalette(palette + [0] * (768 - len(palette)))
        image.save(path)


def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3), EXIF orientation applied."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument(
        "--out", default="masks", help="folder for the class-map PNGs (default: masks)"
    )
    parser.add_argument("--json", action="store_true", help="print per-class pixel areas as JSON")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args(argv)

    model = SegmentationModel(HERE)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = []
    for start in range(0, len(args.images), args.batch_size):
        paths = args.images[start : start + args.batch_size]
        maps = model.predict([load_rgb(p) for p in paths])
        for path, class_map in zip(paths, maps):  # noqa: B905 (runs on Python < 3.10 too)
            target = out_dir / (Path(path).stem + ".png")
            model.palette_png(class_map, target)
            counts = np.bincount(class_map.reshape(-1), minlength=len(model.classes))
            summary.append(
                {
                    "image": str(path),
                    "mask": str(target),
                    "width": int(class_map.shape[1]),
                    "height": int(class_map.shape[0]),
                    "areas": {
                        model.classes[i]["name"]: int(n)
                        for i, n in enumerate(counts)
                        if i > 0 and n
                    },
                }
            )
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
