"""Exports: each format is produced, checked against PyTorch and measured; failures are
reported with their reason instead of raising."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch

from deployments.runtime import ExportError, export_onnx, load_model
from deployments.runtime.artifact import ArtifactMeta
from deployments.runtime.export import ONNX_FP32_ATOL, prune_global_magnitude, sparsity
from deployments.runtime.ort import ort_session
from deployments.runtime.processing import preprocess
from deployments.runtime.report import export_report


@pytest.fixture(scope="module")
def report(trained_artifact: Path, val_set, tmp_path_factory: pytest.TempPathFactory) -> dict:
    model, meta = load_model(trained_artifact)
    return export_report(
        model,
        meta,
        tmp_path_factory.mktemp("exports"),
        val_images=val_set.images,
        val_targets=val_set.targets,
        calibration_images=val_set.images[:8],
        formats=(
            "onnx",
            "onnx-int8-dynamic",
            "onnx-int8-static",
            "onnx-fp16",
            "torchscript",
            "pruned",
        ),
        prune_ratio=0.3,
        speed_repeats=3,
    )


def test_report_covers_every_format_with_measurements(report: dict) -> None:
    assert report["baseline"]["miou"] > 0.6
    assert set(report["formats"]) == {
        "onnx",
        "onnx-int8-dynamic",
        "onnx-int8-static",
        "onnx-fp16",
        "torchscript",
        "pruned",
    }
    for name, entry in report["formats"].items():
        assert entry["ok"], (name, entry.get("error"))
        assert Path(entry["path"]).exists()
        assert (
            entry["size_bytes"] > 0 and entry["speed"]["images_per_s"] > 0 and entry["speedup"] > 0
        )
        assert entry["miou_delta"] == pytest.approx(entry["miou"] - report["baseline"]["miou"])
        assert isinstance(entry["recommended"], bool)
    assert report["recommended"] == [n for n, e in report["formats"].items() if e["recommended"]]


def test_fp32_formats_reproduce_pytorch(report: dict) -> None:
    onnx_entry = report["formats"]["onnx"]
    assert onnx_entry["max_abs_logit_diff"] <= ONNX_FP32_ATOL
    assert abs(onnx_entry["miou_delta"]) < 0.005
    assert report["formats"]["torchscript"]["max_abs_logit_diff"] < 1e-4
    assert abs(report["formats"]["torchscript"]["miou_delta"]) < 0.005
    assert abs(report["formats"]["onnx-fp16"]["miou_delta"]) < 0.02


def test_quantized_formats_are_smaller_and_close(report: dict) -> None:
    fp32_size = report["formats"]["onnx"]["size_bytes"]
    for name in ("onnx-int8-dynamic", "onnx-int8-static"):
        entry = report["formats"][name]
        assert entry["size_bytes"] < 0.6 * fp32_size, name
        assert entry["miou_delta"] > -0.1, name
    assert report["formats"]["onnx-int8-static"]["calibration_images"] == 8
    assert report["formats"]["onnx-fp16"]["size_bytes"] < 0.75 * fp32_size


def test_onnx_batch_axis_is_dynamic(report: dict, val_set, trained_artifact: Path) -> None:
    path = report["formats"]["onnx"]["path"]
    model, meta = load_model(trained_artifact)
    graph_input = onnx.load(path).graph.input[0]
    assert graph_input.type.tensor_type.shape.dim[0].dim_param == "batch"
    batch = preprocess(val_set.images[:5], meta.resolution, meta.mean, meta.std)
    session = ort_session(path)
    (logits,) = session.run(None, {"pixel_values": batch})
    assert logits.shape == (5, meta.num_labels, meta.resolution[0] // 4, meta.resolution[1] // 4)


def test_pruning_zeroes_the_smallest_weights_permanently(trained_artifact: Path) -> None:
    model, _ = load_model(trained_artifact)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruned, info = prune_global_magnitude(model, 0.5)
    assert info["sparsity"] == pytest.approx(0.5, abs=0.01) and sparsity(pruned) == info["sparsity"]
    assert all(
        torch.equal(before[k], v) for k, v in model.state_dict().items()
    )  # original untouched
    keys = set(pruned.state_dict())
    assert not any(k.endswith(("weight_orig", "weight_mask")) for k in keys)  # prune.remove applied
    # Global magnitude: every surviving weight is at least as large as every pruned one.
    weights = [
        m.weight.detach()
        for m in pruned.modules()
        if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)
    ]
    originals = [
        m.weight.detach()
        for m in model.modules()
        if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)
    ]
    kept = torch.cat([o[w != 0].abs().flatten() for w, o in zip(weights, originals, strict=True)])
    dropped = torch.cat(
        [o[w == 0].abs().flatten() for w, o in zip(weights, originals, strict=True)]
    )
    assert kept.min() >= dropped.max()


def test_pruned_entry_reports_sparsity_and_quality(report: dict) -> None:
    entry = report["formats"]["pruned"]
    assert entry["ratio"] == 0.3 and entry["sparsity"] == pytest.approx(0.3, abs=0.01)
    assert entry["miou_delta"] > -0.3


def test_mask2former_exports_to_onnx(m2f_artifact: Path, val_set, tmp_path: Path) -> None:
    model, meta = load_model(m2f_artifact)
    report = export_report(
        model,
        meta,
        tmp_path,
        val_images=val_set.images[:4],
        val_targets=val_set.targets[:4],
        formats=("onnx", "torchscript"),
        speed_repeats=1,
    )
    assert report["formats"]["onnx"]["ok"], report["formats"]["onnx"].get("error")
    assert report["formats"]["onnx"]["max_abs_logit_diff"] <= ONNX_FP32_ATOL


class _FourierModel(torch.nn.Module):
    """A 'model' whose forward uses an FFT, which the TorchScript-based ONNX exporter lacks."""

    def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
        spectrum = torch.fft.rfft2(pixel_values).abs()
        return SimpleNamespace(logits=spectrum[:, :, :16, :16])


def test_export_failure_names_the_reason(tmp_path: Path, val_set) -> None:
    meta = ArtifactMeta.from_dict(
        {
            "format": 1,
            "family": "segformer",
            "variant": "fft",
            "classes": [{"index": i, "name": str(i), "color": "#000000"} for i in range(3)],
            "resolution": [64, 64],
            "mean": [0.5] * 3,
            "std": [0.5] * 3,
        }
    )
    with pytest.raises(ExportError, match="ONNX export of the segformer model .*fft"):
        export_onnx(_FourierModel(), meta, tmp_path / "x.onnx")
    assert not list(tmp_path.iterdir())  # no half-written file left behind
    report = export_report(
        _FourierModel(),
        meta,
        tmp_path / "r",
        val_images=val_set.images[:2],
        val_targets=[np.zeros(i.shape[:2], np.uint8) for i in val_set.images[:2]],
        formats=("onnx", "onnx-int8-dynamic"),
        speed_repeats=1,
    )
    for name in ("onnx", "onnx-int8-dynamic"):
        assert report["formats"][name]["ok"] is False
        assert "fft" in report["formats"][name]["error"]
