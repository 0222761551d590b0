"""training.modeling.data: augmentations move image and mask together, deterministically."""

import numpy as np
import pytest
import torch

from training.modeling.data import (
    AugmentConfig,
    SegmentationEvalDataset,
    SegmentationTrainDataset,
    split_indices,
)

PALETTE = np.array([[10, 10, 10], [250, 20, 20], [20, 250, 20], [20, 20, 250]], np.uint8)
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _label_coded(seed: int, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """An image whose colour says the label: blocks of labels 0..3."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 4, size=(4, 4)).astype(np.uint8)
    mask = np.kron(coarse, np.ones((size // 4, size // 4), np.uint8))
    return PALETTE[mask], mask


def _decode_labels(pixel_values: torch.Tensor) -> np.ndarray:
    rgb = (pixel_values.numpy().transpose(1, 2, 0) * STD + np.array(MEAN)) * 255
    dist = ((rgb[:, :, None, :] - PALETTE[None, None].astype(np.float64)) ** 2).sum(-1)
    return dist.argmin(-1)


@pytest.mark.parametrize(
    "augment",
    [
        AugmentConfig.none(),
        AugmentConfig(hflip=True),
        AugmentConfig(hflip=True, scale_crop=True, scale_range=(0.3, 0.6)),
        AugmentConfig(hflip=True, rotate=True, rotate_degrees=40, scale_crop=True),
    ],
    ids=["none", "hflip", "crop", "rotate+crop"],
)
def test_geometry_is_applied_identically_to_image_and_mask(augment: AugmentConfig) -> None:
    images, masks = zip(*[_label_coded(s) for s in range(4)], strict=True)
    ds = SegmentationTrainDataset(images, masks, (48, 40), augment, mean=MEAN, std=STD, seed=3)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert item["pixel_values"].shape == (3, 48, 40) and item["pixel_values"].dtype == torch.float32
            labels = item["labels"].numpy()
            assert labels.shape == (48, 40) and item["labels"].dtype == torch.int64
            valid = labels != 255
            agree = (_decode_labels(item["pixel_values"])[valid] == labels[valid]).mean()
            assert agree > 0.9  # only interpolation seams differ (a mismatch gives ~0.3)
            if not augment.rotate:
                assert valid.all()


def test_rotation_fills_the_mask_with_ignore() -> None:
    image, mask = _label_coded(0)
    ds = SegmentationTrainDataset([image] * 8, [mask] * 8, (64, 64), AugmentConfig(hflip=False, rotate=True, rotate_degrees=45))
    filled = [int((ds[i]["labels"] == 255).sum()) for i in range(8)]
    assert max(filled) > 0


def test_augmentation_is_a_function_of_seed_epoch_index() -> None:
    images, masks = zip(*[_label_coded(s) for s in range(3)], strict=True)
    aug = AugmentConfig(hflip=True, scale_crop=True, rotate=True, color_jitter=True)
    a = SegmentationTrainDataset(images, masks, (32, 32), aug, seed=1)
    b = SegmentationTrainDataset(images, masks, (32, 32), aug, seed=1)
    torch.manual_seed(123)
    first = a[1]
    torch.manual_seed(999)  # the global RNG must not matter
    again = b[1]
    assert torch.equal(first["pixel_values"], again["pixel_values"])
    assert torch.equal(first["labels"], again["labels"])
    before = torch.get_rng_state()
    a[0]
    assert torch.equal(before, torch.get_rng_state())  # and it is left untouched
    a.set_epoch(1)
    differs = [not torch.equal(a[i]["pixel_values"], b[i]["pixel_values"]) for i in range(3)]
    assert any(differs)


def test_normalisation_and_eval_items() -> None:
    image = np.full((30, 50, 3), 255, np.uint8)
    mask = np.zeros((30, 50), np.uint8)
    ds = SegmentationEvalDataset([image], [mask], (16, 16), mean=MEAN, std=STD)
    item = ds[0]
    assert item["pixel_values"].shape == (3, 16, 16)
    assert torch.allclose(item["pixel_values"], torch.full((3, 16, 16), (1 - 0.5) / 0.25))
    assert item["labels"].shape == (30, 50) and item["index"] == 0


def test_bad_inputs_and_split() -> None:
    image, mask = _label_coded(0)
    with pytest.raises(ValueError):
        SegmentationTrainDataset([image], [mask[:10]], (32, 32))
    with pytest.raises(ValueError):
        SegmentationTrainDataset([image[..., 0]], [mask], (32, 32))
    with pytest.raises(ValueError):
        AugmentConfig.from_dict({"mixup": True})
    train, val = split_indices(10, 0.2, seed=4)
    assert len(val) == 2 and sorted(train + val) == list(range(10))
    assert split_indices(10, 0.2, seed=4) == (train, val)
    assert len(split_indices(2, 0.01)[1]) == 1
