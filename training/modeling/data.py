"""In-memory segmentation datasets with paired image/mask augmentation.

Samples are (image, semantic mask) pairs: image (H, W, 3) uint8 RGB, mask (H, W)
uint8 with 0 = background, i + 1 = project class i, 255 = ignore. They are decoded once
(the caller hands arrays) and kept as uint8 tensors.

Training items go through ``torchvision.transforms.v2`` with the image wrapped as
``tv_tensors.Image`` and the mask as ``tv_tensors.Mask``, so every geometric transform is
applied identically to both (masks use nearest interpolation; pixels that rotation
brings in from outside are 255 = ignore). Colour jitter touches only the image.

Augmentation randomness is a pure function of (seed, epoch, index): each item runs under
``torch.random.fork_rng`` seeded from those three numbers. Data order and augmentation
therefore do not depend on worker count, prefetching or the global RNG, which is what
makes resuming from a checkpoint reproduce an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

IGNORE_INDEX = 255


@dataclass
class AugmentConfig:
    """Which augmentations run on training items (all off = resize + normalise only).

    hflip:        horizontal flip with probability 0.5.
    scale_crop:   random resized crop covering ``scale_range`` of the area (aspect 3/4..4/3).
    rotate:       random rotation in [-rotate_degrees, rotate_degrees].
    color_jitter: brightness/contrast/saturation ``color_strength``, hue ``color_strength / 4``.
    """

    hflip: bool = True
    scale_crop: bool = False
    scale_range: tuple[float, float] = (0.5, 1.0)
    rotate: bool = False
    rotate_degrees: float = 15.0
    color_jitter: bool = False
    color_strength: float = 0.3

    @classmethod
    def from_dict(cls, data: dict | None) -> AugmentConfig:
        """Build from a JSON dict; unknown keys raise ``ValueError``."""
        if not data:
            return cls()
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown augmentations {sorted(unknown)}; known: {sorted(known)}")
        values = dict(data)
        if "scale_range" in values:
            values["scale_range"] = tuple(values["scale_range"])
        return cls(**values)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["scale_range"] = list(self.scale_range)
        return data

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(hflip=False, scale_crop=False, rotate=False, color_jitter=False)


def build_train_transform(resolution: tuple[int, int], augment: AugmentConfig) -> v2.Compose:
    """Paired transform for (tv_tensors.Image uint8, tv_tensors.Mask uint8) -> same, at ``resolution``."""
    steps: list[v2.Transform] = []
    if augment.rotate:
        steps.append(
            v2.RandomRotation(
                augment.rotate_degrees,
                interpolation=v2.InterpolationMode.BILINEAR,
                fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX},
            )
        )
    if augment.scale_crop:
        steps.append(v2.RandomResizedCrop(resolution, scale=augment.scale_range, antialias=False))
    else:
        steps.append(v2.Resize(resolution, antialias=False))
    if augment.hflip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    if augment.color_jitter:
        s = augment.color_strength
        steps.append(v2.ColorJitter(brightness=s, contrast=s, saturation=s, hue=min(0.5, s / 4)))
    return v2.Compose(steps)


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(N, 3, H, W) or (3, H, W) values in 0..255 -> float32 ``(x / 255 - mean) / std``."""
    x = images.float() / 255.0
    shape = (-1, 1, 1)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x - m) / s


def resize_image(image: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
    """(3, H, W) or (N, 3, H, W) tensor -> float32 bilinear resize to ``resolution`` (values kept 0..255).

    The one resize used at inference (and by evaluation); align_corners=False, no antialias.
    """
    batched = image.dim() == 4
    x = image.float() if batched else image.float().unsqueeze(0)
    if tuple(x.shape[-2:]) != tuple(resolution):
        x = F.interpolate(x, size=tuple(resolution), mode="bilinear", align_corners=False)
    return x if batched else x[0]


def _to_chw(image: np.ndarray) -> torch.Tensor:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def _check_pair(image: np.ndarray, mask: np.ndarray) -> None:
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {image.shape[:2]}")
    if mask.dtype != np.uint8:
        raise ValueError(f"mask must be uint8, got {mask.dtype}")


def item_seed(seed: int, epoch: int, index: int) -> int:
    """Seed of the augmentation of item ``index`` in ``epoch``."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(1)[0])


class SegmentationTrainDataset(Dataset):
    """Augmented, resized, normalised training items.

    Item: {"pixel_values": float32 (3, H, W), "labels": int64 (H, W)} with (H, W) =
    ``resolution``; labels keep 255 for ignore.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        resolution: tuple[int, int],
        augment: AugmentConfig | None = None,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        seed: int = 0,
    ) -> None:
        if len(images) != len(masks):
            raise ValueError("images and masks differ in length")
        if not images:
            raise ValueError("empty training set")
        for image, mask in zip(images, masks, strict=True):
            _check_pair(image, mask)
        self.images = [_to_chw(im) for im in images]
        self.masks = [torch.from_numpy(np.ascontiguousarray(m)) for m in masks]
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.augment = augment or AugmentConfig.none()
        self.transform = build_train_transform(self.resolution, self.augment)
        self.mean, self.std = tuple(mean), tuple(std)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentations ``__getitem__`` produces."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = tv_tensors.Image(self.images[index])
        mask = tv_tensors.Mask(self.masks[index][None])
        with torch.random.fork_rng(devices=[]):
            # Seed only the CPU generator the transforms draw from: torch.manual_seed also
            # visits every device and records a stack trace, ~1 ms per item here.
            torch.default_generator.manual_seed(item_seed(self.seed, self.epoch, index))
            image, mask = self.transform(image, mask)
        return {
            "pixel_values": normalize(image.as_subclass(torch.Tensor), self.mean, self.std),
            "labels": mask.as_subclass(torch.Tensor)[0].long(),
        }


class SegmentationEvalDataset(Dataset):
    """Evaluation items: the image resized to ``resolution`` plus the mask at original size.

    Item: {"pixel_values": float32 (3, H, W), "labels": int64 (h0, w0), "index": int}.
    Predictions are upsampled back to (h0, w0) before scoring, as at inference.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        resolution: tuple[int, int],
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
    ) -> None:
        if len(images) != len(masks):
            raise ValueError("images and masks differ in length")
        for image, mask in zip(images, masks, strict=True):
            _check_pair(image, mask)
        self.images = [_to_chw(im) for im in images]
        self.masks = [torch.from_numpy(np.ascontiguousarray(m)) for m in masks]
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.mean, self.std = tuple(mean), tuple(std)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        pixels = normalize(resize_image(self.images[index], self.resolution), self.mean, self.std)
        return {"pixel_values": pixels, "labels": self.masks[index].long(), "index": index}


def collate_eval(items: list[dict]) -> dict:
    """Stack pixel values; keep labels (varying sizes) and indices as lists."""
    return {
        "pixel_values": torch.stack([it["pixel_values"] for it in items]),
        "labels": [it["labels"] for it in items],
        "index": [it["index"] for it in items],
    }


def split_indices(count: int, val_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Deterministic shuffled (train, val) index split; at least one item each when count >= 2."""
    if count < 2:
        raise ValueError("need at least 2 samples to split into train and validation")
    order = np.random.default_rng(seed).permutation(count).tolist()
    n_val = min(count - 1, max(1, round(count * val_fraction)))
    return sorted(order[n_val:]), sorted(order[:n_val])
