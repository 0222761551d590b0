"""Inference for trained artifacts: preprocessing, semantic logits, class maps.

Contract (shared with deployments and exports):
  preprocess:  RGB uint8 (H0, W0, 3) -> bilinear resize of the whole image to
               ``meta["resolution"]`` = (H, W) (align_corners=False, no antialias), / 255,
               ``(x - mean) / std`` -> float32 (N, 3, H, W).
  logits:      (N, K + 1, h, w) semantic scores, label 0 = background. SegFormer: its
               logits at 1/4 resolution. Mask2Former: softmax(class_logits)[..., :-1]
               (dropping "no object") combined with sigmoid(mask_logits) over queries:
               ``einsum("nqc,nqhw->nchw")``, also at 1/4 resolution.
  postprocess: bilinear upsample of the logits to (H0, W0), argmax -> uint8 (H0, W0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import normalize, resize_image


def semantic_logits(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) normalised input -> (N, K + 1, h, w) semantic logits, either family."""
    outputs = model(pixel_values=pixel_values)
    if hasattr(outputs, "class_queries_logits"):
        return mask2former_semantic_logits(outputs.class_queries_logits, outputs.masks_queries_logits)
    return outputs.logits


def mask2former_semantic_logits(
    class_queries_logits: torch.Tensor, masks_queries_logits: torch.Tensor
) -> torch.Tensor:
    """(N, Q, K + 2) class logits and (N, Q, h, w) mask logits -> (N, K + 1, h, w) scores."""
    classes = class_queries_logits.softmax(dim=-1)[..., :-1]
    masks = masks_queries_logits.sigmoid()
    return torch.einsum("nqc,nqhw->nchw", classes, masks)


class SemanticLogitsModel(nn.Module):
    """Wraps a SegFormer/Mask2Former model as ``pixel_values -> logits`` (for exports).

    forward: float32 (N, 3, H, W) normalised -> float32 (N, K + 1, H/4, W/4).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return semantic_logits(self.model, pixel_values)


def preprocess(
    images: Sequence[np.ndarray],
    resolution: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
) -> torch.Tensor:
    """RGB uint8 images (any sizes) -> float32 (N, 3, H, W) model input."""
    size = (int(resolution[0]), int(resolution[1]))
    batch = []
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        chw = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        batch.append(resize_image(chw, size))
    return normalize(torch.stack(batch), mean, std)


def class_map_and_loss(
    scores: torch.Tensor, labels: torch.Tensor, *, probabilities: bool, ignore_index: int = 255
) -> tuple[np.ndarray, float, int]:
    """(K + 1, h, w) scores and an (H0, W0) label map -> the uint8 class map at (H0, W0), the
    summed pixel cross-entropy and the number of pixels it sums (those not ``ignore_index``).

    ``probabilities``: the scores are Mask2Former's per-class probabilities (normalised here
    before the log), not SegFormer's logits."""
    up = F.interpolate(scores[None].float(), size=tuple(labels.shape), mode="bilinear", align_corners=False)
    target = labels.to(up.device, torch.long)[None]
    if probabilities:
        log_p = torch.log(up.clamp_min(1e-8) / up.sum(dim=1, keepdim=True).clamp_min(1e-8))
        loss = F.nll_loss(log_p, target, ignore_index=ignore_index, reduction="sum")
    else:
        loss = F.cross_entropy(up, target, ignore_index=ignore_index, reduction="sum")
    count = int((target != ignore_index).sum())
    return up[0].argmax(dim=0).to(torch.uint8).cpu().numpy(), float(loss), count


def logits_to_class_map(logits: torch.Tensor, size: Sequence[int]) -> np.ndarray:
    """(K + 1, h, w) logits -> uint8 (H0, W0) class map after bilinear upsampling to ``size``."""
    up = F.interpolate(logits[None].float(), size=(int(size[0]), int(size[1])), mode="bilinear", align_corners=False)
    return up[0].argmax(dim=0).to(torch.uint8).cpu().numpy()


def _device_of(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@torch.no_grad()
def predict_class_maps(
    model: nn.Module,
    meta: dict[str, Any],
    images: Sequence[np.ndarray],
    batch_size: int = 8,
) -> list[np.ndarray]:
    """Class maps (uint8 (H0, W0), 0 = background, i + 1 = class i) for RGB uint8 images.

    Runs in eval mode without gradients on the model's device, ``batch_size`` at a time;
    the model's previous train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    device = _device_of(model)
    results: list[np.ndarray] = []
    try:
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            pixels = preprocess(chunk, meta["resolution"], meta["mean"], meta["std"]).to(device)
            logits = semantic_logits(model, pixels)
            for image, item_logits in zip(chunk, logits, strict=True):
                results.append(logits_to_class_map(item_logits, image.shape[:2]))
    finally:
        model.train(was_training)
    return results
