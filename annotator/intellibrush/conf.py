"""IntelliBrush configuration and whether SAM can answer: read at call time from Django
settings, else the environment (``common.conf.setting``).

``TESSERA_SAM_MODEL`` (vit_b | vit_l | vit_h | tiny; default vit_b), ``TESSERA_SAM_DEVICE``
(auto | cpu | cuda[:n]), ``TESSERA_SAM_WAIT_S`` (how long a request waits for an
embedding; default 120), ``TESSERA_SAM_HOT_CACHE`` (records kept per process; default 16),
``TESSERA_SAM_PRECOMPUTE`` (embed new uploads ahead of time; default true),
``TESSERA_SAM_SERVER_ONNX`` (decode server clicks with the exported ONNX decoder in ONNX
Runtime; default true), ``TESSERA_SAM_DECODER_THREADS`` (its threads; default: CPUs),
``TESSERA_SAM_ONNX_DIR`` (where the exported decoder is cached), ``TESSERA_WEIGHTS_DIR``
(where checkpoints are looked for).
"""

from __future__ import annotations

from common.conf import setting, truthy
from common.errors import ApplicationError

from .fallback import INSTALL_HINT
from .sam import MODEL_TYPES, SamWeightsNotFound, resolve_checkpoint

#: ``Job.kind`` of a precompute job.
JOB_KIND = "sam_embeddings"


def sam_model_type() -> str:
    """The configured SAM model type (``TESSERA_SAM_MODEL``)."""
    model_type = str(setting("TESSERA_SAM_MODEL", "vit_b"))
    if model_type not in MODEL_TYPES:
        raise ApplicationError(
            f"TESSERA_SAM_MODEL={model_type!r} is not one of {list(MODEL_TYPES)}.",
            code="sam_misconfigured",
            status_code=500,
        )
    return model_type


def sam_device() -> str:
    """Device for embedding on this worker: ``TESSERA_SAM_DEVICE`` or CUDA when present."""
    device = str(setting("TESSERA_SAM_DEVICE", "auto"))
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def weights_dir() -> str | None:
    value = setting("TESSERA_WEIGHTS_DIR", None)
    return str(value) if value else None


def wait_s() -> float:
    return float(setting("TESSERA_SAM_WAIT_S", 120))


def hot_cache_size() -> int:
    return int(setting("TESSERA_SAM_HOT_CACHE", 16))


def precompute_enabled() -> bool:
    return setting("TESSERA_SAM_PRECOMPUTE", True, truthy)


def sam_available(model_type: str) -> bool:
    """True when SAM can answer for ``model_type`` (checkpoint found, or ``tiny``)."""
    try:
        resolve_checkpoint(model_type, allow_download=False, weights_dir=weights_dir())
    except SamWeightsNotFound:
        return False
    return True


def sam_unavailable_error(model_type: str) -> ApplicationError:
    return ApplicationError(
        f"SAM weights for {model_type} are not installed. {INSTALL_HINT}",
        code="sam_unavailable",
        status_code=409,
        details={"model_type": model_type, "install": INSTALL_HINT},
    )
