"""projects.synthetic: deterministic scenes whose masks match what was drawn."""

import numpy as np
import pytest

from projects.synthetic import (
    SYNTHETIC_CLASSES,
    hex_to_rgb,
    make_dataset,
    make_sample,
    sample_seed,
)


def test_same_seed_same_pixels_and_masks() -> None:
    a, b = make_sample(7), make_sample(7)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.semantic, b.semantic)
    assert [i.class_index for i in a.instances] == [i.class_index for i in b.instances]
    assert not np.array_equal(make_sample(8).image, a.image)


@pytest.mark.parametrize("seed", range(25))
def test_instances_are_disjoint_and_match_semantic(seed: int) -> None:
    sample = make_sample(seed, width=96, height=80, max_objects=8)
    assert sample.image.shape == (80, 96, 3) and sample.image.dtype == np.uint8
    assert sample.semantic.shape == (80, 96) and sample.semantic.dtype == np.uint8
    assert 1 <= len(sample.instances) <= 8
    covered = np.zeros((80, 96), np.int32)
    rebuilt = np.zeros((80, 96), np.uint8)
    for inst in sample.instances:
        assert inst.mask.dtype == bool and inst.mask.any()
        assert 0 <= inst.class_index < len(SYNTHETIC_CLASSES)
        covered += inst.mask
        rebuilt[inst.mask] = inst.class_index + 1
    assert covered.max() == 1  # visible pixels only -> disjoint
    assert np.array_equal(rebuilt, sample.semantic)
    assert sample.semantic.max() <= len(SYNTHETIC_CLASSES)


def test_objects_differ_from_background_in_colour() -> None:
    # The class hue is visible: mean saturation inside objects beats the background's.
    samples = make_dataset(30, seed=3)
    inside, outside = [], []
    for s in samples:
        rgb = s.image.astype(np.float32)
        sat = rgb.max(-1) - rgb.min(-1)
        inside.append(sat[s.semantic > 0].mean())
        outside.append(sat[s.semantic == 0].mean())
    assert np.mean(inside) > np.mean(outside) + 40


def test_dataset_sizes_cycle_and_seeds_are_derived() -> None:
    ds = make_dataset(5, seed=11, sizes=[(64, 48), (32, 40)])
    assert [s.image.shape[:2] for s in ds] == [(48, 64), (40, 32), (48, 64), (40, 32), (48, 64)]
    assert ds[2].seed == sample_seed(11, 2)
    again = make_sample(sample_seed(11, 2), width=64, height=48)
    assert np.array_equal(again.image, ds[2].image)
    assert len({s.seed for s in make_dataset(50, seed=0)}) == 50


def test_every_class_occurs_and_colours_parse() -> None:
    seen = set()
    for s in make_dataset(40, seed=1):
        seen.update(i.class_index for i in s.instances)
    assert seen == set(range(len(SYNTHETIC_CLASSES)))
    for _, colour in SYNTHETIC_CLASSES:
        assert all(0 <= c <= 255 for c in hex_to_rgb(colour))
    with pytest.raises(ValueError):
        hex_to_rgb("#12345")
