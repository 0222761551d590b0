"""Predictors: one interface, three runtimes (PyTorch eager, ONNX Runtime fp32, ONNX Runtime int8).

Typical use::

    predictor = create_predictor("/path/to/artifact", runtime="onnxruntime", device="cpu")
    class_maps = predictor.predict_batch([image_rgb_uint8, ...])       # list of (H, W) uint8
    payloads = predictor.predict_encoded([image], polygons=True)        # RLE per class, see encoding
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .artifact import ArtifactMeta, SemanticLogitsModel, load_model, read_meta
from .encoding import encode_class_map
from .ort import RuntimeUnavailable, configured_threads, ort_session
from .processing import check_image, postprocess, preprocess

RUNTIMES = ("pytorch", "onnxruntime", "onnxruntime-int8")
DEVICES = ("cpu", "cuda")


class Predictor(ABC):
    """Semantic segmentation of RGB images into class maps.

    Subclasses implement :meth:`forward` (a preprocessed NCHW float32 batch -> logits);
    this class does the contract's preprocessing and postprocessing around it.
    """

    runtime: str
    device: str
    #: forwards that may run at the same time (see OnnxPredictor's CPU instances)
    lanes: int = 1

    def __init__(self, meta: ArtifactMeta) -> None:
        self.meta = meta
        self._expected = 0
        self._expected_lock = threading.Lock()

    @contextmanager
    def expecting(self, images: int) -> Iterator[None]:
        """Announce ``images`` that are on their way to :meth:`forward` (being decoded, or
        queued), for as long as the block runs: a runtime that chooses between running
        alone on every core and sharing the cores (OnnxPredictor) shares them when more
        than one image is expected, instead of learning it only when a second forward
        starts beside an all-core one."""
        with self._expected_lock:
            self._expected += images
        try:
            yield
        finally:
            with self._expected_lock:
                self._expected -= images

    @abstractmethod
    def forward(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 at ``meta.resolution`` -> (N, K+1, h, w) float32 logits."""

    def class_maps_from_logits(
        self, logits: np.ndarray, sizes: Sequence[tuple[int, int]]
    ) -> list[np.ndarray]:
        """Upsample + argmax (numpy); runtimes with a faster path override it."""
        return postprocess(logits, sizes)

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Class maps for a batch of images.

        Args:
            images: RGB uint8 arrays (H_i, W_i, 3), any sizes (grey/RGBA accepted).

        Returns:
            uint8 class maps (H_i, W_i): 0 background, i+1 = project class index i.
        """
        if not images:
            return []
        checked = [check_image(image) for image in images]
        batch = preprocess(checked, self.meta.resolution, self.meta.mean, self.meta.std)
        logits = self.forward(batch)
        return self.class_maps_from_logits(logits, [image.shape[:2] for image in checked])

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Class map for one image (see :meth:`predict_batch`)."""
        return self.predict_batch([image])[0]

    def warm_up(self) -> None:
        """One prediction of a blank image at the model's resolution: first runs allocate
        and pick kernels, which should not be paid by a user's request."""
        height, width = self.meta.resolution
        self.predict(np.zeros((height, width, 3), np.uint8))

    def predict_encoded(
        self, images: Sequence[np.ndarray], *, polygons: bool = False, png: bool = False
    ) -> list[dict[str, Any]]:
        """Predictions as API payloads (COCO RLE per class, area, optional polygons/PNG)."""
        return [
            encode_class_map(class_map, self.meta.classes, polygons=polygons, png=png)
            for class_map in self.predict_batch(images)
        ]


class TorchPredictor(Predictor):
    """Eager PyTorch (or a TorchScript module): ``logits_fn(pixel_values) -> logits``."""

    runtime = "pytorch"

    def __init__(
        self,
        logits_fn: Callable[[torch.Tensor], torch.Tensor],
        meta: ArtifactMeta,
        device: str = "cpu",
        *,
        half: bool = False,
    ) -> None:
        super().__init__(meta)
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeUnavailable(
                "device 'cuda' requested but torch.cuda.is_available() is False"
            )
        self.device = device
        self.half = half and device == "cuda"
        if isinstance(logits_fn, torch.nn.Module):
            logits_fn = logits_fn.to(device).eval()
            if self.half:
                logits_fn = logits_fn.half()
        self.logits_fn = logits_fn

    @classmethod
    def from_model(
        cls, model: torch.nn.Module, meta: ArtifactMeta, device: str = "cpu", **kwargs: Any
    ) -> TorchPredictor:
        """Wrap a transformers model of ``meta.family``."""
        return cls(SemanticLogitsModel(model), meta, device, **kwargs)

    def _logits(self, batch: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(batch).to(self.device)
        if self.half:
            tensor = tensor.half()
        with torch.inference_mode():
            return self.logits_fn(tensor).float()

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return self._logits(batch).cpu().numpy()

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        # Same contract as the base class, but upsampling and argmax stay on the device.
        if not images:
            return []
        checked = [check_image(image) for image in images]
        batch = preprocess(checked, self.meta.resolution, self.meta.mean, self.meta.std)
        logits = self._logits(batch)
        maps = []
        with torch.inference_mode():
            for i, image in enumerate(checked):
                up = torch.nn.functional.interpolate(
                    logits[i : i + 1], size=image.shape[:2], mode="bilinear", align_corners=False
                )
                maps.append(up[0].argmax(dim=0).to(torch.uint8).cpu().numpy())
        return maps


class OnnxPredictor(Predictor):
    """ONNX Runtime session over an exported model (fp32, fp16 or int8).

    On the CPU with ``instances`` > 1 it holds a second session of the same model with
    ``threads // instances`` intra-op threads (Triton's "model instances"): a forward that
    finds others already running, or more images announced (:meth:`expecting`) than its
    own batch, uses that one, so up to ``instances`` forwards run side by side, each on
    its own cores, instead of queueing for the all-core session. A lone request still
    gets every core. On 2 cores, two 1-thread forwards of SegFormer-B0 at 512x512 gave
    6.5 images/s against 5.6 for one 2-thread session run back to back: the threads of
    one forward wait for each other at every operator, and any other process on a core
    stalls them all. Announcing matters at the start of a burst: an all-core forward that
    a second one joins runs 3 threads on 2 cores (benchmarks/inference_http.py, 4 clients:
    0.72-0.84x the bare session's images/s before the inference worker announced the
    requests it was decoding and the ones the web marked as sent beside others, 0.88-1.13x
    after). The second session costs the model's memory once more.
    """

    def __init__(
        self,
        onnx_path: str | Path,
        meta: ArtifactMeta,
        device: str = "cpu",
        *,
        threads: int | None = None,
        runtime: str = "onnxruntime",
        instances: int = 1,
    ) -> None:
        super().__init__(meta)
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
        self.device = device
        self.runtime = runtime
        self.onnx_path = Path(onnx_path)
        self.session = ort_session(onnx_path, device, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.narrow = None
        if device == "cpu" and instances > 1:
            cores = threads or configured_threads() or os.cpu_count() or 1
            self.narrow = ort_session(onnx_path, device, max(1, cores // instances))
            self.lanes = instances
        self._lock = threading.Lock()  # one forward at a time on the all-core session
        self._count_lock = threading.Lock()
        self._running = 0

    def warm_up(self) -> None:
        super().warm_up()
        if self.narrow is not None:
            height, width = self.meta.resolution
            blank = np.zeros((1, 3, height, width), np.float32)
            self.narrow.run(None, {self.input_name: blank})

    def forward(self, batch: np.ndarray) -> np.ndarray:
        with self._count_lock:
            self._running += 1
            crowded = self._running > 1 or self._expected > len(batch)
        try:
            if crowded and self.narrow is not None:
                (logits,) = self.narrow.run(None, {self.input_name: batch})
            else:
                with self._lock:
                    (logits,) = self.session.run(None, {self.input_name: batch})
        finally:
            with self._count_lock:
                self._running -= 1
        return np.asarray(logits, dtype=np.float32)


def create_predictor(
    artifact_dir: str | Path,
    runtime: str = "pytorch",
    device: str = "cpu",
    *,
    cache_dir: str | Path | None = None,
    calibration_images: Sequence[np.ndarray] | None = None,
    threads: int | None = None,
    instances: int = 1,
) -> Predictor:
    """Load an artifact into a ready predictor.

    Args:
        artifact_dir: trained artifact directory (model/ + tessera.json).
        runtime: ``"pytorch"``, ``"onnxruntime"`` or ``"onnxruntime-int8"``.
        device: ``"cpu"`` or ``"cuda"``.
        cache_dir: where ONNX exports are written and reused (default ``<artifact>/exports``).
        calibration_images: for ``onnxruntime-int8``: RGB images to calibrate static QDQ
            quantization; without them dynamic (weight-only) quantization is used.
        threads: intra-op threads for ONNX Runtime / torch.
        instances: ONNX Runtime on the CPU: forwards that may run side by side (see
            :class:`OnnxPredictor`); ignored by the other runtimes.

    Raises:
        ValueError: unknown runtime or device.
        RuntimeUnavailable: the device is not present, or the model cannot be exported
            to ONNX (the message carries the exporter's reason).
    """
    from . import export

    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    artifact_dir = Path(artifact_dir)
    if runtime == "pytorch":
        if threads:
            torch.set_num_threads(threads)
        model, meta = load_model(artifact_dir)
        return TorchPredictor.from_model(model, meta, device)

    meta = read_meta(artifact_dir)
    cache = Path(cache_dir) if cache_dir else artifact_dir / "exports"
    cache.mkdir(parents=True, exist_ok=True)
    fp32 = cache / "model.onnx"
    if not fp32.exists():
        model, meta = load_model(artifact_dir)
        try:
            export.export_onnx(model, meta, fp32)
        except export.ExportError as exc:
            raise RuntimeUnavailable(str(exc)) from exc
    path = fp32
    if runtime == "onnxruntime-int8":
        if calibration_images:
            path = cache / "model.int8-static.onnx"
            if not path.exists():
                export.quantize_onnx_static(fp32, path, meta, calibration_images)
        else:
            path = cache / "model.int8-dynamic.onnx"
            if not path.exists():
                export.quantize_onnx_dynamic(fp32, path)
    return OnnxPredictor(path, meta, device, threads=threads, runtime=runtime, instances=instances)
