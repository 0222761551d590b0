"""Model registry: which segmentation models Tessera can train, and how to build them.

Keyed by ``(family, variant)``: ``("segformer", "b0")`` .. ``("segformer", "b5")``,
``("mask2former", "swin-tiny")`` .. ``("mask2former", "swin-large")`` and a CPU friendly
``tiny`` variant per family (random initialisation only; used by tests and demos).

``build_model(spec, num_labels, pretrained, weights_dir)`` builds a transformers model
whose output has ``num_labels`` semantic classes (Tessera's convention: label 0 is the
background, project class i is label i + 1, so ``num_labels = len(classes) + 1``).

Weights policy (``pretrained`` is a key of ``spec.pretrained``, ``"none"``, ``None`` for
the spec's default, or the path of an earlier Tessera artifact directory):
  1. ``weights_dir`` (or ``$TESSERA_WEIGHTS_DIR``): ``<dir>/<hub id>`` or
     ``<dir>/<hub id with '/' replaced by '--'>`` holding a ``config.json``;
  2. the Hugging Face cache (``local_files_only``);
  3. the Hub, unless offline (``allow_download=False`` or ``HF_HUB_OFFLINE=1``).
  Nothing found -> ``WeightsNotFoundError`` naming every place looked at. Random
  initialisation happens only for ``pretrained="none"``.

No Django here.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import (
    Mask2FormerConfig,
    Mask2FormerForUniversalSegmentation,
    PreTrainedModel,
    SegformerConfig,
    SegformerForSemanticSegmentation,
    SwinConfig,
)

logger = logging.getLogger(__name__)

Family = Literal["segformer", "mask2former"]
FAMILIES: tuple[str, ...] = ("segformer", "mask2former")
NO_PRETRAINED = "none"
WEIGHTS_DIR_ENV = "TESSERA_WEIGHTS_DIR"
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
SWIN_OUT_FEATURES = ["stage1", "stage2", "stage3", "stage4"]


class ModelRegistryError(ValueError):
    """Unknown family/variant or an impossible combination (message says which)."""


class WeightsNotFoundError(FileNotFoundError):
    """Asked-for pretrained weights are not available locally nor downloadable.

    ``looked_in`` lists every location that was tried, in order.
    """

    def __init__(self, message: str, *, hub_id: str = "", looked_in: list[str] | None = None):
        super().__init__(message)
        self.hub_id = hub_id
        self.looked_in = list(looked_in or [])


@dataclass(frozen=True)
class ModelSpec:
    """One trainable model.

    pretrained:          source name -> Hub id, e.g. {"imagenet": "nvidia/mit-b0"}.
                         "imagenet" sources hold only the encoder/backbone; the others
                         are full segmentation checkpoints (their head is re-initialised
                         for the project's classes).
    default_pretrained:  the source used when none is named ("none" for tiny variants).
    default_resolution:  (H, W) used when the workflow names none.
    allowed_resolutions: (H, W) pairs accepted for this model.
    memory_gb:           rough GPU memory for training at default resolution, batch 8,
                         fp16; used for up-front validation / worker choice.
    config:              architecture values (family specific, see ``build_config``).
    """

    family: str
    variant: str
    description: str
    default_resolution: tuple[int, int]
    allowed_resolutions: tuple[tuple[int, int], ...]
    pretrained: dict[str, str] = field(default_factory=dict)
    default_pretrained: str = NO_PRETRAINED
    memory_gb: float = 1.0
    params_m: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.family, self.variant)

    def pretrained_sources(self) -> list[str]:
        """Valid values of ``pretrained`` for this spec (besides an artifact path)."""
        return [*self.pretrained.keys(), NO_PRETRAINED]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (for API listings)."""
        return {
            "family": self.family,
            "variant": self.variant,
            "description": self.description,
            "default_resolution": list(self.default_resolution),
            "allowed_resolutions": [list(r) for r in self.allowed_resolutions],
            "pretrained": dict(self.pretrained),
            "pretrained_sources": self.pretrained_sources(),
            "default_pretrained": self.default_pretrained,
            "memory_gb": self.memory_gb,
            "params_m": self.params_m,
        }


def _square(*sides: int) -> tuple[tuple[int, int], ...]:
    return tuple((s, s) for s in sides)


# --- SegFormer (MiT encoders; values of the published b0..b5 configurations) -------------
_MIT_SIZES: dict[str, dict[str, Any]] = {
    "b0": {"hidden_sizes": [32, 64, 160, 256], "depths": [2, 2, 2, 2], "decoder_hidden_size": 256},
    "b1": {"hidden_sizes": [64, 128, 320, 512], "depths": [2, 2, 2, 2], "decoder_hidden_size": 256},
    "b2": {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 4, 6, 3], "decoder_hidden_size": 768},
    "b3": {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 4, 18, 3], "decoder_hidden_size": 768},
    "b4": {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 8, 27, 3], "decoder_hidden_size": 768},
    "b5": {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 6, 40, 3], "decoder_hidden_size": 768},
}
_MIT_PARAMS_M = {"b0": 3.8, "b1": 13.7, "b2": 27.5, "b3": 47.3, "b4": 64.1, "b5": 84.7}
_MIT_MEMORY_GB = {"b0": 3.0, "b1": 4.5, "b2": 7.0, "b3": 9.5, "b4": 12.0, "b5": 15.0}
_SEGFORMER_ADE = {
    "b0": "nvidia/segformer-b0-finetuned-ade-512-512",
    "b1": "nvidia/segformer-b1-finetuned-ade-512-512",
    "b2": "nvidia/segformer-b2-finetuned-ade-512-512",
    "b3": "nvidia/segformer-b3-finetuned-ade-512-512",
    "b4": "nvidia/segformer-b4-finetuned-ade-512-512",
    "b5": "nvidia/segformer-b5-finetuned-ade-640-640",
}
_SEGFORMER_CITYSCAPES = {v: f"nvidia/segformer-{v}-finetuned-cityscapes-1024-1024" for v in _MIT_SIZES}

# --- Mask2Former (Swin backbones) ---------------------------------------------------------
_SWIN_SIZES: dict[str, dict[str, Any]] = {
    "swin-tiny": {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 7},
    "swin-small": {"embed_dim": 96, "depths": [2, 2, 18, 2], "num_heads": [3, 6, 12, 24], "window_size": 7},
    "swin-base": {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32], "window_size": 12},
    "swin-large": {"embed_dim": 192, "depths": [2, 2, 18, 2], "num_heads": [6, 12, 24, 48], "window_size": 12},
}
_SWIN_IMAGENET = {
    "swin-tiny": "microsoft/swin-tiny-patch4-window7-224",
    "swin-small": "microsoft/swin-small-patch4-window7-224",
    "swin-base": "microsoft/swin-base-patch4-window12-384-in22k",
    "swin-large": "microsoft/swin-large-patch4-window12-384-in22k",
}
_M2F_ADE = {
    "swin-tiny": "facebook/mask2former-swin-tiny-ade-semantic",
    "swin-small": "facebook/mask2former-swin-small-ade-semantic",
    "swin-base": "facebook/mask2former-swin-base-ade-semantic",
    "swin-large": "facebook/mask2former-swin-large-ade-semantic",
}
_M2F_CITYSCAPES = {
    "swin-tiny": "facebook/mask2former-swin-tiny-cityscapes-semantic",
    "swin-small": "facebook/mask2former-swin-small-cityscapes-semantic",
    "swin-base": "facebook/mask2former-swin-base-IN21k-cityscapes-semantic",
    "swin-large": "facebook/mask2former-swin-large-cityscapes-semantic",
}
# COCO has panoptic/instance Mask2Former checkpoints; their queries and mask head transfer
# to semantic fine-tuning (the class head is re-initialised anyway).
_M2F_COCO = {
    "swin-tiny": "facebook/mask2former-swin-tiny-coco-instance",
    "swin-small": "facebook/mask2former-swin-small-coco-instance",
    "swin-base": "facebook/mask2former-swin-base-coco-panoptic",
    "swin-large": "facebook/mask2former-swin-large-coco-panoptic",
}
_SWIN_PARAMS_M = {"swin-tiny": 47.4, "swin-small": 68.8, "swin-base": 107.0, "swin-large": 215.0}
_SWIN_MEMORY_GB = {"swin-tiny": 10.0, "swin-small": 13.0, "swin-base": 18.0, "swin-large": 28.0}
_M2F_HEAD = {
    "num_queries": 100,
    "hidden_dim": 256,
    "feature_size": 256,
    "mask_feature_size": 256,
    "encoder_layers": 6,
    "decoder_layers": 10,
    "dim_feedforward": 2048,
    "num_attention_heads": 8,
}


def _builtin_specs() -> dict[tuple[str, str], ModelSpec]:
    specs: list[ModelSpec] = []
    for variant, arch in _MIT_SIZES.items():
        specs.append(
            ModelSpec(
                family="segformer",
                variant=variant,
                description=f"SegFormer-{variant.upper()} (MiT-{variant} encoder, all-MLP decoder)",
                default_resolution=(512, 512),
                allowed_resolutions=_square(256, 384, 512, 640, 768, 1024),
                pretrained={
                    "imagenet": f"nvidia/mit-{variant}",
                    "ade20k": _SEGFORMER_ADE[variant],
                    "cityscapes": _SEGFORMER_CITYSCAPES[variant],
                },
                default_pretrained="imagenet",
                memory_gb=_MIT_MEMORY_GB[variant],
                params_m=_MIT_PARAMS_M[variant],
                config={**arch, "num_attention_heads": [1, 2, 5, 8]},
            )
        )
    specs.append(
        ModelSpec(
            family="segformer",
            variant="tiny",
            description="Tiny SegFormer (0.46 M params) for CPU tests and demos; random init only",
            default_resolution=(64, 64),
            allowed_resolutions=_square(32, 64, 96, 128, 192, 256),
            memory_gb=0.2,
            params_m=0.46,
            config={
                "hidden_sizes": [16, 32, 64, 128],
                "depths": [1, 1, 1, 1],
                "num_attention_heads": [1, 1, 2, 4],
                "decoder_hidden_size": 64,
            },
        )
    )
    for variant, swin in _SWIN_SIZES.items():
        specs.append(
            ModelSpec(
                family="mask2former",
                variant=variant,
                description=f"Mask2Former with a Swin-{variant.split('-')[1].title()} backbone",
                default_resolution=(512, 512),
                allowed_resolutions=_square(384, 512, 640, 768, 1024),
                pretrained={
                    "imagenet": _SWIN_IMAGENET[variant],
                    "ade20k": _M2F_ADE[variant],
                    "cityscapes": _M2F_CITYSCAPES[variant],
                    "coco": _M2F_COCO[variant],
                },
                default_pretrained="ade20k",
                memory_gb=_SWIN_MEMORY_GB[variant],
                params_m=_SWIN_PARAMS_M[variant],
                config={"swin": swin, **_M2F_HEAD},
            )
        )
    specs.append(
        ModelSpec(
            family="mask2former",
            variant="tiny",
            description="Tiny Mask2Former (about 1.4 M params) for CPU tests and demos; random init only",
            default_resolution=(64, 64),
            allowed_resolutions=_square(64, 96, 128, 192, 256),
            memory_gb=0.3,
            params_m=1.4,
            config={
                "swin": {"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2], "window_size": 4},
                "num_queries": 10,
                "hidden_dim": 32,
                "feature_size": 32,
                "mask_feature_size": 32,
                "encoder_layers": 1,
                "decoder_layers": 2,
                "dim_feedforward": 64,
                "num_attention_heads": 2,
                "train_num_points": 1024,
            },
        )
    )
    return {spec.key: spec for spec in specs}


MODEL_SPECS: dict[tuple[str, str], ModelSpec] = _builtin_specs()


def list_specs(family: str | None = None) -> list[ModelSpec]:
    """All registered specs, optionally of one family, in registration order."""
    return [s for s in MODEL_SPECS.values() if family is None or s.family == family]


def get_spec(family: str, variant: str) -> ModelSpec:
    """The spec for ``(family, variant)``; ``ModelRegistryError`` naming valid choices."""
    if family not in FAMILIES:
        raise ModelRegistryError(f"unknown model family {family!r}; choose one of {list(FAMILIES)}")
    try:
        return MODEL_SPECS[(family, variant)]
    except KeyError:
        variants = [s.variant for s in list_specs(family)]
        raise ModelRegistryError(
            f"unknown {family} variant {variant!r}; choose one of {variants}"
        ) from None


def label_maps(class_names: list[str] | None, num_labels: int) -> tuple[dict[int, str], dict[str, int]]:
    """id2label / label2id for a model with ``num_labels`` outputs (label 0 = background)."""
    names = list(class_names) if class_names else ["background"] + [f"class_{i}" for i in range(1, num_labels)]
    if len(names) != num_labels:
        raise ModelRegistryError(f"{len(names)} class names for {num_labels} labels")
    id2label = dict(enumerate(names))
    return id2label, {name: i for i, name in id2label.items()}


def build_config(spec: ModelSpec, num_labels: int, class_names: list[str] | None = None):
    """A transformers config for ``spec`` with ``num_labels`` semantic outputs."""
    if num_labels < 2:
        raise ModelRegistryError("num_labels must be >= 2 (background plus at least one class)")
    id2label, label2id = label_maps(class_names, num_labels)
    if spec.family == "segformer":
        return SegformerConfig(
            num_labels=num_labels, id2label=id2label, label2id=label2id, **spec.config
        )
    if spec.family == "mask2former":
        cfg = dict(spec.config)
        swin = SwinConfig(
            image_size=spec.default_resolution[0],
            out_features=list(SWIN_OUT_FEATURES),
            **cfg.pop("swin"),
        )
        return Mask2FormerConfig(
            backbone_config=swin,
            num_labels=num_labels,
            id2label=id2label,
            label2id=label2id,
            **cfg,
        )
    raise ModelRegistryError(f"unknown model family {spec.family!r}")


def model_class(family: str) -> type[PreTrainedModel]:
    """The transformers class that a family trains."""
    if family == "segformer":
        return SegformerForSemanticSegmentation
    if family == "mask2former":
        return Mask2FormerForUniversalSegmentation
    raise ModelRegistryError(f"unknown model family {family!r}")


# --- weights resolution ---------------------------------------------------------------------
def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def local_weights(
    hub_id: str, weights_dir: str | os.PathLike[str] | None = None, *, looked: list[str] | None = None
) -> str | None:
    """The local copy of ``hub_id`` (weights folder, then the Hugging Face cache), or None.
    Never downloads; appends each place looked at to ``looked``."""
    looked = [] if looked is None else looked
    base = weights_dir if weights_dir is not None else os.environ.get(WEIGHTS_DIR_ENV)
    if base:
        for candidate in (Path(base) / hub_id, Path(base) / hub_id.replace("/", "--")):
            looked.append(str(candidate))
            if (candidate / "config.json").is_file():
                return str(candidate)
    else:
        looked.append(f"${WEIGHTS_DIR_ENV} (not set)")

    from huggingface_hub import try_to_load_from_cache

    looked.append(f"Hugging Face cache for {hub_id}")
    try:  # a file-system look only (snapshot_download(local_files_only=True) took ~1 s)
        config = try_to_load_from_cache(hub_id, "config.json")
    except Exception:  # noqa: BLE001 - an invalid id is "not cached" too
        return None
    return str(Path(config).parent) if isinstance(config, str) else None


def local_sources(spec: ModelSpec, weights_dir: str | os.PathLike[str] | None = None) -> dict[str, bool]:
    """Whether each pretrained source of ``spec`` has its weights on this machine ("none"
    always does)."""
    return {source: source == NO_PRETRAINED or local_weights(spec.pretrained[source], weights_dir) is not None
            for source in spec.pretrained_sources()}


def resolve_weights(
    hub_id: str,
    weights_dir: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool | None = None,
) -> str:
    """Where to load ``hub_id`` from: a local directory or the Hub id itself.

    Returns a path (weights folder or HF cache snapshot) or ``hub_id`` when it will be
    fetched from the Hub. Raises ``WeightsNotFoundError`` listing every place looked at.
    ``allow_download=None`` means "unless HF_HUB_OFFLINE is set".
    """
    looked: list[str] = []
    local = local_weights(hub_id, weights_dir, looked=looked)
    if local is not None:
        return local

    download = (not _hub_offline()) if allow_download is None else allow_download
    if download:
        from huggingface_hub import snapshot_download

        looked.append(f"https://huggingface.co/{hub_id}")
        try:
            return snapshot_download(hub_id, allow_patterns=["*.json", "*.safetensors"])
        except Exception as exc:  # noqa: BLE001 - network, auth, missing repo...
            logger.warning("download of %s failed: %s", hub_id, exc)
    else:
        looked.append("the Hub (skipped: offline)")
    raise WeightsNotFoundError(
        f"pretrained weights {hub_id!r} were not found. Looked in: {'; '.join(looked)}. "
        f"Provide them by copying the model folder (config.json + model.safetensors) to "
        f"<{WEIGHTS_DIR_ENV}>/{hub_id}/, by running `huggingface-cli download {hub_id}` on a "
        f"machine with internet access and sharing its cache, or choose pretrained='none' "
        f"to train from random weights.",
        hub_id=hub_id,
        looked_in=looked,
    )


def is_artifact_dir(value: str | os.PathLike[str]) -> bool:
    """True when ``value`` is a Tessera artifact directory (has tessera.json and model/)."""
    path = Path(value)
    return (path / "tessera.json").is_file() and (path / "model").is_dir()


def build_model(
    spec: ModelSpec,
    num_labels: int,
    pretrained: str | None = None,
    weights_dir: str | os.PathLike[str] | None = None,
    *,
    class_names: list[str] | None = None,
    allow_download: bool | None = None,
) -> PreTrainedModel:
    """Build ``spec``'s model with ``num_labels`` outputs, following the weights policy.

    pretrained: a key of ``spec.pretrained`` ("imagenet", "ade20k", ...), "none" for
      random init, ``None`` for ``spec.default_pretrained``, or the path of an earlier
      artifact directory of the same family (fine-tune again from it; its head is kept
      when the label count matches, re-initialised otherwise).
    class_names: optional names (len == num_labels, index 0 = "background") stored in
      the model config's id2label.
    """
    source = spec.default_pretrained if pretrained is None else pretrained
    config = build_config(spec, num_labels, class_names)
    cls = model_class(spec.family)

    if source == NO_PRETRAINED:
        return cls(config)

    if is_artifact_dir(source):
        meta = json.loads((Path(source) / "tessera.json").read_text())
        if meta.get("family") != spec.family:
            raise ModelRegistryError(
                f"artifact {source} is a {meta.get('family')} model; cannot start a "
                f"{spec.family} training from it"
            )
        return cls.from_pretrained(
            str(Path(source) / "model"),
            num_labels=num_labels,
            id2label=config.id2label,
            label2id=config.label2id,
            ignore_mismatched_sizes=True,
        )

    if source not in spec.pretrained:
        raise ModelRegistryError(
            f"{spec.family}/{spec.variant} has no pretrained source {source!r}; "
            f"choose one of {spec.pretrained_sources()} or an artifact directory"
        )
    hub_id = spec.pretrained[source]
    location = resolve_weights(hub_id, weights_dir, allow_download=allow_download)

    if spec.family == "mask2former" and source == "imagenet":
        # Backbone-only checkpoint: build the full model, then load the Swin encoder.
        from transformers import AutoBackbone

        model = cls(config)
        backbone = AutoBackbone.from_pretrained(location, out_features=list(SWIN_OUT_FEATURES))
        missing, unexpected = model.model.pixel_level_module.encoder.load_state_dict(
            backbone.state_dict(), strict=False
        )
        if unexpected:
            logger.warning("unexpected backbone keys from %s: %s", hub_id, unexpected[:5])
        return model

    # Full checkpoints (and SegFormer's MiT encoder checkpoints, whose weights are the
    # ``segformer.*`` encoder): the decode/class head is re-initialised when shapes differ.
    return cls.from_pretrained(
        location,
        num_labels=num_labels,
        id2label=config.id2label,
        label2id=config.label2id,
        ignore_mismatched_sizes=True,
    )


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters in ``model``."""
    return sum(p.numel() for p in model.parameters())
