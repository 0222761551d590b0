"""SAM (segment-anything) for IntelliBrush: build, find weights, embed once, decode many.

Django-free. The split mirrors ``segment_anything.SamPredictor`` but keeps the image
embedding as a plain value (``EmbeddingRecord``) instead of hidden predictor state, so
it can be computed on a GPU worker, stored (fp16 ``.npz``), cached, sent to a browser
and decoded later by any process that holds the same model weights.

Coordinates everywhere are pixels of the *original* image, ``(x, y)``; sizes are
``(height, width)``.
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from segment_anything.build_sam import sam_model_registry
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)
from segment_anything.utils.transforms import ResizeLongestSide

#: Model types this module can build. ``tiny`` is a small encoder built from the same
#: segment-anything classes (random weights unless a checkpoint is given) for tests
#: and CPU-only demos; the others are the official architectures.
MODEL_TYPES: tuple[str, ...] = ("vit_b", "vit_l", "vit_h", "tiny")

#: File names of the official checkpoints (as published by the segment-anything repo).
OFFICIAL_CHECKPOINTS: dict[str, str] = {
    "vit_h": "sam_vit_h_4b8939.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_b": "sam_vit_b_01ec64.pth",
}
CHECKPOINT_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything/"

#: Seed of the random initialisation of models built without a checkpoint, so that
#: two processes building ``tiny`` (or a random vit_b in a benchmark) get equal weights.
RANDOM_INIT_SEED = 0


class SamWeightsNotFound(RuntimeError):
    """No checkpoint was found for a model type that needs one."""

    def __init__(self, model_type: str, looked_in: list[str]) -> None:
        name = OFFICIAL_CHECKPOINTS.get(model_type, f"<checkpoint for {model_type}>")
        self.model_type = model_type
        self.looked_in = looked_in
        super().__init__(
            f"No SAM checkpoint for model type {model_type!r}. Looked in: "
            + "; ".join(looked_in)
            + f". To provide it, download {CHECKPOINT_BASE_URL}{name} and put it in the "
            "folder named by TESSERA_WEIGHTS_DIR (or set TESSERA_SAM_CHECKPOINT to the "
            "file's path), or set TESSERA_SAM_ALLOW_DOWNLOAD=1 on a machine with internet."
        )


# --------------------------------------------------------------------------- building


def build_tiny_sam() -> Sam:
    """A small SAM from the segment-anything classes, for tests and CPU.

    Encoder: ViT with 2 blocks of width 64 on a 256-pixel input (16x16 patch grid);
    prompt/decoder width 64, so embeddings are (1, 64, 16, 16) and the low-res mask
    is 64x64. About 0.4 M parameters; an embedding takes milliseconds on a CPU.
    """
    image_size, patch, prompt_dim = 256, 16, 64
    grid = image_size // patch
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=2,
            embed_dim=64,
            img_size=image_size,
            mlp_ratio=2,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=2,
            patch_size=patch,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=[1],
            window_size=4,
            out_chans=prompt_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=128, num_heads=4),
            transformer_dim=prompt_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=64,
        ),
    ).eval()


def build_sam(model_type: str, checkpoint: str | os.PathLike[str] | None = None) -> Sam:
    """Build a SAM of ``model_type`` in eval mode; load ``checkpoint`` when given.

    Without a checkpoint the weights are random but deterministic (seeded with
    ``RANDOM_INIT_SEED``): use that only for tests and benchmarks.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown SAM model type {model_type!r}; expected one of {MODEL_TYPES}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        model = build_tiny_sam() if model_type == "tiny" else sam_model_registry[model_type]()
    if checkpoint is not None:
        state = torch.load(Path(checkpoint), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model.eval()


# --------------------------------------------------------------------------- weights


def checkpoint_candidates(
    model_type: str, *, weights_dir: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Local files that may hold the checkpoint of ``model_type``, in search order.

    1. ``TESSERA_SAM_CHECKPOINT`` (an explicit file);
    2. ``<weights dir>/<official name>`` and ``<weights dir>/sam/<official name>``, where the
       weights dir is ``weights_dir`` if given, else env ``TESSERA_WEIGHTS_DIR``;
    3. the torch hub checkpoint cache (where ``torch.hub`` downloads land).
    """
    found: list[Path] = []
    explicit = os.environ.get("TESSERA_SAM_CHECKPOINT")
    if explicit:
        found.append(Path(explicit).expanduser())
    name = OFFICIAL_CHECKPOINTS.get(model_type, f"sam_{model_type}.pth")
    weights_dir = weights_dir or os.environ.get("TESSERA_WEIGHTS_DIR")
    if weights_dir:
        base = Path(weights_dir).expanduser()
        found += [base / name, base / "sam" / name]
    found.append(Path(torch.hub.get_dir()) / "checkpoints" / name)
    return found


def resolve_checkpoint(
    model_type: str,
    *,
    allow_download: bool | None = None,
    weights_dir: str | os.PathLike[str] | None = None,
) -> Path | None:
    """Find the checkpoint file for ``model_type`` following the weights policy.

    Returns ``None`` for ``tiny`` when no file is found (it is meant to run with random
    weights). For the official types, looks at ``checkpoint_candidates`` and then, when
    ``allow_download`` (default: env ``TESSERA_SAM_ALLOW_DOWNLOAD=1``), downloads the
    official file into the torch hub cache. Raises ``SamWeightsNotFound`` otherwise.
    """
    candidates = checkpoint_candidates(model_type, weights_dir=weights_dir)
    for path in candidates:
        if path.is_file():
            return path
    if model_type == "tiny":
        return None
    if allow_download is None:
        allow_download = os.environ.get("TESSERA_SAM_ALLOW_DOWNLOAD", "") in {"1", "true", "yes"}
    looked = [str(p) for p in candidates]
    if allow_download and model_type in OFFICIAL_CHECKPOINTS:
        target = Path(torch.hub.get_dir()) / "checkpoints" / OFFICIAL_CHECKPOINTS[model_type]
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(
                CHECKPOINT_BASE_URL + OFFICIAL_CHECKPOINTS[model_type], str(target)
            )
            return target
        except Exception as exc:  # network errors vary by platform
            looked.append(f"{CHECKPOINT_BASE_URL} (download failed: {exc})")
    raise SamWeightsNotFound(model_type, looked)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class EmbeddingRecord:
    """One image's SAM embedding plus what is needed to decode prompts against it.

    embedding:      (1, C, h, w) float16; C=256, h=w=64 for the official models.
    input_size:     (height, width) of the image after resizing its longest side to
                    ``image_size`` (before padding to a square).
    original_size:  (height, width) of the original image.
    image_size:     the encoder's square input side (1024 for official models).
    model_type:     which model produced it (embeddings are only valid for that model).
    """

    embedding: np.ndarray
    input_size: tuple[int, int]
    original_size: tuple[int, int]
    image_size: int
    model_type: str

    @property
    def mask_input_size(self) -> tuple[int, int]:
        """Size (h, w) of the low-res mask logits that decode returns and accepts."""
        return 4 * int(self.embedding.shape[-2]), 4 * int(self.embedding.shape[-1])

    def transform_info(self) -> dict[str, object]:
        """What a browser needs to turn clicks into decoder inputs (JSON-friendly).

        A click ``(x, y)`` in original pixels maps to ``(x * scale_x, y * scale_y)`` in the
        decoder's coordinate frame (the resized, unpadded image).
        """
        (oh, ow), (ih, iw) = self.original_size, self.input_size
        return {
            "model_type": self.model_type,
            "image_size": self.image_size,
            "original_size": [oh, ow],
            "input_size": [ih, iw],
            "scale_x": iw / ow,
            "scale_y": ih / oh,
            "embedding_shape": list(self.embedding.shape),
            "embedding_dtype": "float16",
            "mask_input_size": list(self.mask_input_size),
        }

    def to_npz_bytes(self) -> bytes:
        """Serialise to an (uncompressed) ``.npz`` blob; fp16 embedding."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            embedding=self.embedding.astype(np.float16),
            input_size=np.asarray(self.input_size, np.int64),
            original_size=np.asarray(self.original_size, np.int64),
            image_size=np.asarray(self.image_size, np.int64),
            model_type=np.asarray(self.model_type),
        )
        return buffer.getvalue()

    @classmethod
    def from_npz_bytes(cls, data: bytes) -> EmbeddingRecord:
        """Inverse of ``to_npz_bytes``."""
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            ih, iw = (int(v) for v in npz["input_size"])
            oh, ow = (int(v) for v in npz["original_size"])
            return cls(
                embedding=npz["embedding"].astype(np.float16),
                input_size=(ih, iw),
                original_size=(oh, ow),
                image_size=int(npz["image_size"]),
                model_type=str(npz["model_type"]),
            )


class SamMask(NamedTuple):
    """Result of one decode: the chosen mask.

    mask:            (H, W) bool at the original image size.
    score:           the model's predicted IoU of that mask.
    low_res_logits:  (1, 4h, 4w) float32 logits (256x256 for official models); pass
                     them back as ``mask_input`` to refine with more clicks.
    """

    mask: np.ndarray
    score: float
    low_res_logits: np.ndarray


def default_multimask(num_points: int, has_box: bool) -> bool:
    """Whether a prompt is ambiguous enough to ask for three masks and keep the best.

    Same rule as the exported ONNX decoder (``SamOnnxModel(return_single_mask=True)``),
    which counts the padding point added when there is no box: multimask when that
    count is at most 2, i.e. a single click, or a box alone. Browser and server then
    pick the same mask for the same prompt.
    """
    count = num_points + (2 if has_box else 1)
    return count <= 2


# --------------------------------------------------------------------------- engine


class SamEngine:
    """A loaded SAM: ``compute_embedding`` once per image, ``decode`` per click.

    Thread-safe for concurrent ``decode`` calls (no mutable per-image state);
    ``compute_embedding`` is serialised by a lock to bound memory use.
    """

    def __init__(self, model: Sam, model_type: str, *, checkpoint: Path | None = None) -> None:
        self.model = model.eval()
        self.model_type = model_type
        self.checkpoint = checkpoint
        self.image_size = int(model.image_encoder.img_size)
        self.transform = ResizeLongestSide(self.image_size)
        self._embed_lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model_type: str,
        *,
        device: str | torch.device = "cpu",
        allow_download: bool | None = None,
        decoder_only: bool = False,
        weights_dir: str | os.PathLike[str] | None = None,
    ) -> SamEngine:
        """Resolve the weights of ``model_type`` and build the engine on ``device``.

        ``decoder_only`` drops the image encoder after loading (vit_h's is 2.4 GB): such
        an engine decodes stored embeddings and exports the ONNX decoder, but cannot
        ``compute_embedding``. Web processes use it; GPU workers load the full model.
        """
        checkpoint = resolve_checkpoint(
            model_type, allow_download=allow_download, weights_dir=weights_dir
        )
        model = build_sam(model_type, checkpoint)
        if decoder_only:
            model.image_encoder = _EncoderStub(model.image_encoder.img_size)
        return cls(model.to(device), model_type, checkpoint=checkpoint)

    @property
    def has_encoder(self) -> bool:
        return not isinstance(self.model.image_encoder, _EncoderStub)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @torch.no_grad()
    def compute_embedding(self, image: np.ndarray) -> EmbeddingRecord:
        """Encode an RGB image once. ``image``: (H, W, 3) uint8 RGB (grey (H, W) accepted).

        Same preprocessing as ``SamPredictor.set_image``; the result is stored fp16.
        """
        if not self.has_encoder:
            raise RuntimeError("this engine was loaded with decoder_only=True")
        image = _as_rgb_uint8(image)
        resized = self.transform.apply_image(image)
        tensor = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
        with self._embed_lock:
            features = self.model.image_encoder(self.model.preprocess(tensor))
        return EmbeddingRecord(
            embedding=features.float().cpu().numpy().astype(np.float16),
            input_size=(int(resized.shape[0]), int(resized.shape[1])),
            original_size=(int(image.shape[0]), int(image.shape[1])),
            image_size=self.image_size,
            model_type=self.model_type,
        )

    @torch.no_grad()
    def _decode_low_res(
        self,
        record: EmbeddingRecord,
        points: np.ndarray | None,
        labels: np.ndarray | None,
        box: np.ndarray | None,
        mask_input: np.ndarray | None,
        multimask: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt encoder + mask decoder: low-res logits (1, C, 4h, 4w) and IoU (1, C)."""
        if record.model_type != self.model_type:
            raise ValueError(
                f"embedding was computed by {record.model_type!r}, engine is {self.model_type!r}"
            )
        coords_t = labels_t = box_t = mask_t = None
        if points is not None and len(points):
            if labels is None or len(labels) != len(points):
                raise ValueError("labels must give one 0/1 label per point")
            coords = self.transform.apply_coords(
                np.asarray(points, np.float64).reshape(-1, 2), record.original_size
            )
            coords_t = torch.as_tensor(coords, dtype=torch.float, device=self.device)[None]
            labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.int, device=self.device)[None]
        if box is not None:
            boxes = self.transform.apply_boxes(
                np.asarray(box, np.float64).reshape(1, 4), record.original_size
            )
            box_t = torch.as_tensor(boxes, dtype=torch.float, device=self.device)
        if mask_input is not None:
            low = np.asarray(mask_input, np.float32).reshape(1, *record.mask_input_size)
            mask_t = torch.as_tensor(low, device=self.device)[None]
        if coords_t is None and box_t is None and mask_t is None:
            raise ValueError("give at least one point, a box or a mask")

        sparse, dense = self.model.prompt_encoder(
            points=(coords_t, labels_t) if coords_t is not None else None,
            boxes=box_t,
            masks=mask_t,
        )
        features = torch.as_tensor(record.embedding, device=self.device).float()
        return self.model.mask_decoder(
            image_embeddings=features,
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )

    @torch.no_grad()
    def decode_all(
        self,
        record: EmbeddingRecord,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``SamPredictor.predict`` against a stored embedding.

        points: (N, 2) float (x, y) in original pixels; labels: (N,) 1 include, 0 exclude;
        box: (4,) x0, y0, x1, y1; mask_input: (1, 4h, 4w) or (4h, 4w) low-res logits.
        Returns masks (C, H, W) (bool, or float logits with ``return_logits``),
        scores (C,), low-res logits (C, 4h, 4w); C = 3 with ``multimask`` else 1.
        """
        low_res, iou = self._decode_low_res(record, points, labels, box, mask_input, multimask)
        masks = self.model.postprocess_masks(low_res, record.input_size, record.original_size)
        if not return_logits:
            masks = masks > self.model.mask_threshold
        return masks[0].cpu().numpy(), iou[0].cpu().numpy(), low_res[0].cpu().numpy()

    @torch.no_grad()
    def decode(
        self,
        record: EmbeddingRecord,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool | None = None,
    ) -> SamMask:
        """Best single mask for a prompt (see ``decode_all`` for the argument formats).

        ``multimask=None`` applies ``default_multimask``; with multimask the mask with
        the highest predicted IoU of the three is returned. Only that mask is upsampled
        to full size (upsampling is per mask, so the result equals ``decode_all``'s).
        """
        n_points = 0 if points is None else len(points)
        if multimask is None:
            multimask = default_multimask(n_points, box is not None)
        low_res, iou = self._decode_low_res(record, points, labels, box, mask_input, multimask)
        best = int(torch.argmax(iou[0]))
        chosen = low_res[:, best : best + 1]
        mask = self.model.postprocess_masks(chosen, record.input_size, record.original_size)
        return SamMask(
            (mask[0, 0] > self.model.mask_threshold).cpu().numpy(),
            float(iou[0, best]),
            chosen[0].cpu().numpy(),
        )


class _EncoderStub(torch.nn.Module):
    """Stands in for a dropped image encoder: keeps ``img_size``, which decoding reads."""

    def __init__(self, img_size: int) -> None:
        super().__init__()
        self.img_size = img_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - guarded above
        raise RuntimeError("image encoder not loaded (decoder_only engine)")


#: Magnitude of the logits that ``mask_to_low_res_logits`` gives to sure pixels.
MASK_PROMPT_LOGIT = 8.0


def mask_to_low_res_logits(mask: np.ndarray, record: EmbeddingRecord) -> np.ndarray:
    """A full-size bool mask (H, W) as a (1, 4h, 4w) ``mask_input`` for ``decode``.

    Inverse of SAM's postprocessing: resize to ``input_size``, pad to the square
    encoder frame, shrink to the low-res grid (area average), and map the covered
    fraction p to logits ``(2p - 1) * MASK_PROMPT_LOGIT``. Lets a client refine with
    the previous mask as RLE instead of carrying the previous logits around.
    """
    import cv2

    full = np.asarray(mask, bool)
    if full.shape != tuple(record.original_size):
        raise ValueError(f"mask is {full.shape}, image is {tuple(record.original_size)}")
    ih, iw = record.input_size
    resized = cv2.resize(full.astype(np.float32), (iw, ih), interpolation=cv2.INTER_AREA)
    square = np.zeros((record.image_size, record.image_size), np.float32)
    square[:ih, :iw] = resized
    low_h, low_w = record.mask_input_size
    low = cv2.resize(square, (low_w, low_h), interpolation=cv2.INTER_AREA)
    return ((2.0 * low - 1.0) * MASK_PROMPT_LOGIT)[None].astype(np.float32)


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {array.dtype}")
    return np.ascontiguousarray(array[..., :3])


# --------------------------------------------------------------------------- per process

_engines: dict[tuple[str, str, bool], SamEngine] = {}
_engines_lock = threading.Lock()


def get_engine(
    model_type: str,
    *,
    device: str = "cpu",
    decoder_only: bool = False,
    weights_dir: str | os.PathLike[str] | None = None,
) -> SamEngine:
    """The process-wide engine for ``model_type`` on ``device``, loaded on first use.

    Raises ``SamWeightsNotFound`` when an official model has no checkpoint (callers
    then use the classical fallback). Loads at most once per process and key; a full
    engine already loaded also serves ``decoder_only`` requests.
    """
    full_key = (model_type, str(device), False)
    key = (model_type, str(device), decoder_only)
    engine = _engines.get(key) or _engines.get(full_key)
    if engine is not None:
        return engine
    with _engines_lock:
        engine = _engines.get(key) or _engines.get(full_key)
        if engine is None:
            engine = SamEngine.load(
                model_type, device=device, decoder_only=decoder_only, weights_dir=weights_dir
            )
            _engines[key] = engine
    return engine


def clear_engines() -> None:
    """Forget loaded engines (tests, or after the weights folder changed)."""
    with _engines_lock:
        _engines.clear()
