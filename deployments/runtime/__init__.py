"""Deployment runtime: predictors, dynamic batching, exports and bundles (no Django).

Public entry points:

* :func:`create_predictor` (``pytorch`` | ``onnxruntime`` | ``onnxruntime-int8``, cpu | cuda)
  and the :class:`Predictor` interface (``predict_batch``, ``predict_encoded``);
* :class:`BatchingQueue` for dynamic batching of concurrent requests, and
  :class:`HotModels`, the per-process cache of loaded models behind their queues;
* :mod:`.export` (ONNX, int8 dynamic/static, fp16, TorchScript, pruning) and
  :mod:`.report` (``export_report``: size, speed and mIoU of each format);
* :func:`build_bundle` / :func:`build_bundle_from_artifact` (standalone zip);
* :func:`encode_class_map` (COCO RLE per class, polygons, palette PNG).
"""

from .artifact import ArtifactError, ArtifactMeta, load_model, read_meta, write_artifact
from .batching import BatchingQueue, QueueClosed, QueueFull
from .bundle import build_bundle, build_bundle_from_artifact
from .encoding import encode_class_map, rle_decode, rle_encode
from .export import ExportError, export_onnx
from .hot import HotModel, HotModels, ModelKey
from .ort import RuntimeUnavailable
from .predictor import (
    DEVICES,
    RUNTIMES,
    OnnxPredictor,
    Predictor,
    TorchPredictor,
    create_predictor,
)
from .report import export_report

__all__ = [
    "DEVICES",
    "RUNTIMES",
    "ArtifactError",
    "ArtifactMeta",
    "BatchingQueue",
    "ExportError",
    "HotModel",
    "HotModels",
    "ModelKey",
    "OnnxPredictor",
    "Predictor",
    "QueueClosed",
    "QueueFull",
    "RuntimeUnavailable",
    "TorchPredictor",
    "build_bundle",
    "build_bundle_from_artifact",
    "create_predictor",
    "encode_class_map",
    "export_onnx",
    "export_report",
    "load_model",
    "read_meta",
    "rle_decode",
    "rle_encode",
    "write_artifact",
]
