"""Training throughput: Tessera's Trainer vs a bare transformers training loop.

Same model architecture and initial weights, same batch size, same images (synthetic
shapes), same optimizer (AdamW), in the same process, interleaved in rounds so that load
from other processes on a shared machine hits both alike.

  * platform: ``training.modeling.trainer.Trainer`` (accelerate, in-memory dataset with
    per-item seeded augmentation (hflip), DataLoader, LR schedule, grad clipping), timed by
    the images/s it logs itself (data loading + step, one log per step; the first step is
    left out as warm-up); evaluation and checkpoints off.
  * bare: the textbook loop over the same data: the same dataset (decoded once, same
    seeded hflip, resize, normalisation) through a plain shuffled DataLoader,
    ``model(pixel_values, labels).loss.backward(); optimizer.step()``. So the ratio is what
    the Trainer adds (accelerate, schedule, clipping, logging, cancel checks); what the
    platform's database writes and live publishing add is measured by
    benchmarks/training_publish_cost.py.

Usage:  python benchmarks/training_throughput.py [--family segformer] [--variant tiny]
        [--resolution 64] [--batch 16] [--steps 40] [--rounds 3] [--threads 1]
Writes benchmarks/results/training_throughput.json and prints the same figures.
On CUDA both sides use the GPU (the Trainer's mixed precision is set to "no" so the
comparison stays like for like).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from projects.synthetic import SYNTHETIC_CLASSES, make_dataset  # noqa: E402
from training.modeling.config import TrainConfig  # noqa: E402
from training.modeling.registry import build_model, get_spec  # noqa: E402
from training.modeling.trainer import Trainer, TrainerCallbacks, make_datasets  # noqa: E402


class _Throughput(TrainerCallbacks):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_log(self, step: int, values: dict) -> None:
        self.values.append(values["images_per_second"])


def _platform_round(args, state: dict, pairs, device: str) -> float:
    config = _config(args)
    model = build_model(get_spec(args.family, args.variant), len(SYNTHETIC_CLASSES) + 1, "none")
    model.load_state_dict(state)
    train, _ = make_datasets(config, pairs, pairs[:1])
    recorder = _Throughput()
    with tempfile.TemporaryDirectory() as tmp:
        Trainer(config, model, train, None, tmp, recorder).fit()
    seconds = sum(args.batch / ips for ips in recorder.values[1:])  # skip the warm-up step
    return args.steps * args.batch / seconds


def _config(args) -> TrainConfig:
    return TrainConfig(
        family=args.family, variant=args.variant, resolution=(args.resolution, args.resolution),
        batch_size=args.batch, steps=args.steps + 1, lr=1e-3, schedule="constant",
        eval_interval=10**9, log_interval=1, checkpoint_every_n_steps=0,
        keep_best_metric=None, pretrained="none", augmentations={"hflip": True},
        mixed_precision="no",
    )


def _bare_round(args, state: dict, pairs, device: str) -> float:
    """The textbook loop over the same data: the same dataset object (decoded images,
    the same seeded hflip, resize, normalisation) through a plain DataLoader."""
    model = build_model(get_spec(args.family, args.variant), len(SYNTHETIC_CLASSES) + 1, "none")
    model.load_state_dict(state)
    model.to(device).train()
    train, _ = make_datasets(_config(args), pairs, pairs[:1])
    loader = torch.utils.data.DataLoader(train, batch_size=args.batch, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def batches():
        while True:
            yield from loader

    stream = batches()

    def step() -> None:
        batch = next(stream)
        images, labels = batch["pixel_values"].to(device), batch["labels"].to(device)
        if args.family == "mask2former":
            from training.modeling.trainer import mask2former_targets

            masks, classes = mask2former_targets(labels)
            loss = model(pixel_values=images, mask_labels=masks, class_labels=classes).loss
        else:
            loss = model(pixel_values=images, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up, like the platform's first step
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return args.steps * args.batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="segformer")
    parser.add_argument("--variant", default="tiny")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "training_throughput.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    torch.manual_seed(0)
    reference = build_model(get_spec(args.family, args.variant), len(SYNTHETIC_CLASSES) + 1, "none")
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    size = (args.resolution, args.resolution)
    pairs = [(s.image, s.semantic) for s in make_dataset(args.images, seed=0, sizes=[size])]

    platform_ips, bare_ips = [], []
    for _ in range(args.rounds):
        bare_ips.append(_bare_round(args, state, pairs, device))
        platform_ips.append(_platform_round(args, state, pairs, device))
    result = {
        "benchmark": "training_throughput",
        "model": f"{args.family}/{args.variant}",
        "resolution": list(size),
        "batch_size": args.batch,
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
        "torch_threads": args.threads,
        "platform_images_per_second": {"median": statistics.median(platform_ips), "all": platform_ips},
        "bare_images_per_second": {"median": statistics.median(bare_ips), "all": bare_ips},
        "platform_over_bare": statistics.median(platform_ips) / statistics.median(bare_ips),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
