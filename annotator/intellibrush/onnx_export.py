"""Export SAM's prompt encoder + mask decoder to ONNX for in-browser decoding.

Django-free. The exported graph is ``segment_anything.utils.onnx.SamOnnxModel`` with
``return_single_mask=True`` (the decoder the segment-anything web demo runs), with its
final crop made traceable (see ``_TraceableSamOnnxModel``): the
browser holds the image embedding (from ``GET /assets/{id}/embedding/``) and runs this
small model (~16 MB fp32 for the official types) on every click.

ONNX inputs (all float32 unless noted), built by ``decoder_inputs``:
  image_embeddings  (1, C, h, w)      the stored fp16 embedding, as float32
  point_coords      (1, N, 2)         clicks (x, y) scaled into the resized frame,
                                      then box corners; or a (0, 0) padding point
  point_labels      (1, N)            1 include, 0 exclude, 2/3 box corners, -1 padding
  mask_input        (1, 1, 4h, 4w)    previous low-res logits, or zeros
  has_mask_input    (1,)              1.0 when mask_input is meaningful
  orig_im_size      (2,)              original (height, width)
Outputs: masks (1, 1, H, W) logits at the original size (threshold 0), iou_predictions
(1, 1), low_res_masks (1, 1, 4h, 4w).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.onnx import SamOnnxModel
from torch.nn import functional as F

from .sam import EmbeddingRecord, SamEngine, SamMask

OPSET = 17
INPUT_NAMES = [
    "image_embeddings",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
    "orig_im_size",
]
OUTPUT_NAMES = ["masks", "iou_predictions", "low_res_masks"]

_export_lock = threading.Lock()


class _TraceableSamOnnxModel(SamOnnxModel):
    """``SamOnnxModel`` whose crop to the unpadded image follows ``orig_im_size``.

    Upstream crops with ``masks[..., : int(size[0]), : int(size[1])]``; under tracing
    ``int()`` freezes the size computed from the *dummy* input into the graph (683x1024
    for the usual 1500x2250 dummy), so any image of another aspect ratio gets a slightly
    shifted, stretched mask. ``index_select`` over ``arange(size)`` stays a graph op.
    """

    def mask_postprocessing(self, masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        masks = F.interpolate(
            masks, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False
        )
        prepadded = self.resize_longest_image_size(orig_im_size, self.img_size)
        rows = torch.arange(prepadded[0], device=masks.device)
        cols = torch.arange(prepadded[1], device=masks.device)
        masks = masks.index_select(2, rows).index_select(3, cols)
        orig = orig_im_size.to(torch.int64)
        return F.interpolate(masks, size=(orig[0], orig[1]), mode="bilinear", align_corners=False)


def export_decoder_onnx(model: Sam, path: str | os.PathLike[str], *, opset: int = OPSET) -> Path:
    """Write the prompt-encoder + mask-decoder ONNX graph of ``model`` to ``path``.

    The number of points is a dynamic axis. The file appears atomically (written to a
    temporary name in the same folder, then renamed). Returns the path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _TraceableSamOnnxModel(model, return_single_mask=True).eval()
    embed_dim = model.prompt_encoder.embed_dim
    grid_h, grid_w = model.prompt_encoder.image_embedding_size
    mask_h, mask_w = model.prompt_encoder.mask_input_size
    size = model.image_encoder.img_size
    dummy = {
        "image_embeddings": torch.randn(1, embed_dim, grid_h, grid_w, dtype=torch.float),
        "point_coords": torch.randint(0, size, (1, 5, 2), dtype=torch.float),
        "point_labels": torch.randint(0, 4, (1, 5), dtype=torch.float),
        "mask_input": torch.randn(1, 1, mask_h, mask_w, dtype=torch.float),
        "has_mask_input": torch.tensor([1], dtype=torch.float),
        "orig_im_size": torch.tensor([1500, 2250], dtype=torch.float),
    }
    handle, tmp_name = tempfile.mkstemp(suffix=".onnx.tmp", dir=target.parent)
    os.close(handle)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=UserWarning)
            torch.onnx.export(
                wrapper,
                tuple(dummy.values()),
                tmp_name,
                export_params=True,
                verbose=False,
                opset_version=opset,
                do_constant_folding=True,
                input_names=INPUT_NAMES,
                output_names=OUTPUT_NAMES,
                dynamic_axes={
                    "point_coords": {1: "num_points"},
                    "point_labels": {1: "num_points"},
                },
                dynamo=False,
            )
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


def weights_fingerprint(model: Sam) -> str:
    """Short sha256 of the prompt encoder + mask decoder weights (what the ONNX holds)."""
    digest = hashlib.sha256()
    for module in (model.prompt_encoder, model.mask_decoder):
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cached_decoder_onnx(engine: SamEngine, cache_dir: str | os.PathLike[str]) -> Path:
    """The decoder ONNX of ``engine``, exported once into ``cache_dir`` and reused.

    File name ``sam_decoder_<model_type>_<weights fingerprint>.onnx``: a different
    checkpoint gives a different file, never a stale one.
    """
    name = f"sam_decoder_{engine.model_type}_{weights_fingerprint(engine.model)}.onnx"
    target = Path(cache_dir) / name
    if target.is_file():
        return target
    with _export_lock:
        if not target.is_file():
            export_decoder_onnx(engine.model, target)
    return target


def decoder_inputs(
    record: EmbeddingRecord,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    box: np.ndarray | None = None,
    mask_input: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Feed dict for the exported decoder: the same recipe the browser follows.

    Arguments as ``SamEngine.decode`` (original-pixel coordinates). Points are scaled by
    ``record.transform_info()``'s ``scale_x``/``scale_y``; a box becomes two points with
    labels 2 and 3; without a box a (0, 0) point with label -1 is appended.
    """
    info = record.transform_info()
    scale = np.array([info["scale_x"], info["scale_y"]], np.float32)
    coords: list[np.ndarray] = []
    point_labels: list[np.ndarray] = []
    if points is not None and len(points):
        coords.append(np.asarray(points, np.float32).reshape(-1, 2) * scale)
        point_labels.append(np.asarray(labels, np.float32).reshape(-1))
    if box is not None:
        corners = np.asarray(box, np.float32).reshape(2, 2) * scale
        coords.append(corners)
        point_labels.append(np.array([2, 3], np.float32))
    else:
        coords.append(np.zeros((1, 2), np.float32))
        point_labels.append(np.array([-1], np.float32))
    mask_h, mask_w = record.mask_input_size
    if mask_input is None:
        mask = np.zeros((1, 1, mask_h, mask_w), np.float32)
        has_mask = np.zeros(1, np.float32)
    else:
        mask = np.asarray(mask_input, np.float32).reshape(1, 1, mask_h, mask_w)
        has_mask = np.ones(1, np.float32)
    return {
        "image_embeddings": record.embedding.astype(np.float32),
        "point_coords": np.concatenate(coords)[None].astype(np.float32),
        "point_labels": np.concatenate(point_labels)[None].astype(np.float32),
        "mask_input": mask,
        "has_mask_input": has_mask,
        "orig_im_size": np.asarray(record.original_size, np.float32),
    }


class OnnxDecoder:
    """Runs an exported decoder with onnxruntime (CPU); mirrors ``SamEngine.decode``."""

    def __init__(self, path: str | os.PathLike[str], *, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def decode(
        self,
        record: EmbeddingRecord,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        *,
        return_logits: bool = False,
    ) -> SamMask:
        """Best mask for a prompt; ``mask`` is bool (H, W), or float logits if asked."""
        feeds = decoder_inputs(record, points, labels, box, mask_input)
        masks, scores, low_res = self.session.run(OUTPUT_NAMES, feeds)
        mask = masks[0, 0] if return_logits else masks[0, 0] > 0.0
        return SamMask(mask, float(scores[0, 0]), low_res[0].astype(np.float32))
