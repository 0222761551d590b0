"""Semantic segmentation metrics from a confusion matrix.

``confusion[t, p]`` counts pixels whose truth is ``t`` and prediction ``p``; truth pixels
equal to ``ignore_index`` (255) are skipped.

Per class c (tp = confusion[c, c], fp = column sum - tp, fn = row sum - tp):
  IoU = tp / (tp + fp + fn),  F1 (= Dice) = 2 tp / (2 tp + fp + fn).
Averaging rule: a class that is absent from both the truth and the prediction
(tp + fp + fn == 0) has an undefined score; it is reported as ``None`` and left out of
``miou`` / ``mean_f1``. A class present in the truth but never predicted (or predicted but
absent) scores 0 and counts. The background (label 0) is a class like the others.
Pixel accuracy = trace / total of non-ignored pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

IGNORE_INDEX = 255


def confusion_matrix(
    prediction: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    num_classes: int,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """(num_classes, num_classes) int64 counts for same-shape integer label maps.

    Raises ``ValueError`` for shape mismatch or labels outside 0..num_classes-1 (other
    than ``ignore_index`` in the target).
    """
    pred = torch.as_tensor(prediction).reshape(-1).long()
    true = torch.as_tensor(target).reshape(-1).long()
    if pred.shape != true.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(true.shape)} differ")
    keep = true != ignore_index
    pred, true = pred[keep], true[keep]
    if true.numel() and (int(true.min()) < 0 or int(true.max()) >= num_classes):
        raise ValueError(f"target labels outside 0..{num_classes - 1}")
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= num_classes):
        raise ValueError(f"predicted labels outside 0..{num_classes - 1}")
    counts = torch.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).cpu().numpy().astype(np.int64)


class ConfusionMatrix:
    """Accumulates a confusion matrix over many (prediction, target) pairs."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes < 1:
            raise ValueError("num_classes must be >= 1")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def update(self, prediction: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> None:
        """Add one label map pair (any equal shapes)."""
        self.matrix += confusion_matrix(prediction, target, self.num_classes, self.ignore_index)

    def merge(self, other: np.ndarray) -> None:
        """Add counts gathered elsewhere (e.g. from other processes)."""
        self.matrix += np.asarray(other, dtype=np.int64)

    def compute(self, class_names: list[str] | None = None) -> dict[str, Any]:
        return metrics_from_confusion(self.matrix, class_names)


def metrics_from_confusion(
    matrix: np.ndarray, class_names: list[str] | None = None
) -> dict[str, Any]:
    """Metrics dict from a confusion matrix (rows = truth, columns = prediction).

    Returns {"miou", "mean_f1", "pixel_accuracy", "pixels", "per_class": [{"index",
    "name", "iou", "f1", "support", "predicted"}], "confusion": [[int]]} with floats in 0..1
    (None when undefined); "confusion" is the matrix itself, rows = truth.
    """
    m = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(m)
    fp = m.sum(axis=0) - tp
    fn = m.sum(axis=1) - tp
    union = tp + fp + fn
    present = union > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(present, tp / np.where(present, union, 1), np.nan)
        f1 = np.where(present, 2 * tp / np.where(present, 2 * tp + fp + fn, 1), np.nan)
    total = m.sum()
    per_class = []
    for c in range(m.shape[0]):
        per_class.append(
            {
                "index": c,
                "name": class_names[c] if class_names else str(c),
                "iou": None if not present[c] else float(iou[c]),
                "f1": None if not present[c] else float(f1[c]),
                "support": int(m[c].sum()),
                "predicted": int(m[:, c].sum()),
            }
        )
    return {
        "miou": float(np.nanmean(iou)) if present.any() else None,
        "mean_f1": float(np.nanmean(f1)) if present.any() else None,
        "pixel_accuracy": float(tp.sum() / total) if total else None,
        "pixels": int(total),
        "per_class": per_class,
        "confusion": m.astype(np.int64).tolist(),
    }
