from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand
from PIL import Image

from projects import synthetic


class Command(BaseCommand):
    help = ("Write a synthetic segmentation dataset (images/*.png, masks/*.png with pixel = "
            "class index + 1, classes.txt), deterministic from --seed.")

    def add_arguments(self, parser):
        parser.add_argument("output", type=Path)
        parser.add_argument("--count", type=int, default=100)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--width", type=int, default=128)
        parser.add_argument("--height", type=int, default=128)
        parser.add_argument("--mixed-sizes", action="store_true",
                            help="cycle through synthetic.MIXED_SIZES (landscape, portrait, small, "
                                 "12 MP) instead of --width x --height")

    def handle(self, *args, output: Path, count: int, seed: int, width: int, height: int,
               mixed_sizes: bool = False, **opts):
        sizes = synthetic.MIXED_SIZES if mixed_sizes else [(width, height)]
        (output / "images").mkdir(parents=True, exist_ok=True)
        (output / "masks").mkdir(parents=True, exist_ok=True)
        for i, sample in enumerate(synthetic.make_dataset(count, seed=seed, sizes=sizes)):
            Image.fromarray(sample.image).save(output / "images" / f"{i:05d}.png")
            Image.fromarray(sample.semantic.astype(np.uint8)).save(output / "masks" / f"{i:05d}.png")
        (output / "classes.txt").write_text("\n".join(synthetic.class_names()) + "\n")
        self.stdout.write(f"Wrote {count} samples to {output}")
