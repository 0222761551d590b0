"""The checked COCO RLE codec agrees with pycocotools and refuses what pycocotools
would misread; the semantic overlap rule."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as cocomask

from annotator.formats import rle as rlelib
from annotator.formats.semantic import semantic_map, semantic_map_from_arrays

masks = st.tuples(st.integers(1, 23), st.integers(1, 23)).flatmap(
    lambda hw: arrays(np.bool_, hw))


@settings(max_examples=200, deadline=None)
@given(masks)
def test_string_codec_matches_pycocotools(mask):
    ours = rlelib.encode(mask)
    theirs = cocomask.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert ours["counts"] == theirs["counts"].decode()
    runs = rlelib.parse_counts(ours, height=mask.shape[0], width=mask.shape[1])
    assert rlelib.counts_to_string(runs) == ours["counts"]
    assert sum(runs) == mask.size and rlelib.area(ours) == mask.sum()
    assert np.array_equal(rlelib.decode(ours), mask)


@settings(max_examples=100, deadline=None)
@given(masks)
def test_encode_reads_every_memory_layout_the_same(mask):
    # column-major bool masks are read in place (the predict path's per-class masks);
    # row-major, uint8, transposed and strided ones are copied: all give one RLE
    expected = cocomask.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()
    padded = np.zeros((mask.shape[0], 2 * mask.shape[1]), bool)
    padded[:, ::2] = mask
    for layout in (mask, np.asfortranarray(mask), mask.astype(np.uint8),
                   np.ascontiguousarray(mask.T).T, padded[:, ::2]):
        assert rlelib.encode(layout) == {"size": list(mask.shape), "counts": expected}


@settings(max_examples=100, deadline=None)
@given(masks, st.data())
def test_uncompressed_and_non_canonical_counts_normalize_to_the_same_rle(mask, data):
    runs = rlelib.parse_counts(rlelib.encode(mask))
    # insert zero-length runs pairs anywhere: same pixels, different counts
    at = data.draw(st.integers(0, len(runs)))
    padded = runs[:at] + [0, 0] + runs[at:]
    uncompressed = {"size": list(mask.shape), "counts": padded}
    assert rlelib.normalize(uncompressed, allow_list=True) == rlelib.encode(mask)


def test_large_masks_parse_like_pycocotools():
    yy, xx = np.mgrid[0:1500, 0:2100]
    rng = np.random.default_rng(0)
    for _ in range(5):
        cy, cx, r = rng.uniform(0, 1500), rng.uniform(0, 2100), rng.uniform(3, 900)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        encoded = rlelib.encode(mask)
        runs = rlelib.parse_counts(encoded, height=1500, width=2100)
        assert sum(runs[1::2]) == mask.sum() == rlelib.area(encoded)
        assert rlelib.counts_to_string(runs) == encoded["counts"]
        assert rlelib.normalize(encoded) == encoded


@pytest.mark.parametrize(("counts", "reason"), [
    ("zzz", "invalid character"),         # pycocotools decodes this into 58 of 35 pixels
    ("0:", "cover 10 pixels"),
    ("", "cover 0 pixels"),
    ("O", "negative"),                    # a lone -1
    ("0P", "middle of a number"),         # continuation bit on the last character
    (b"\xff", "not ASCII"),
    ("0\u00e9", "not ASCII"),
])
def test_malformed_counts_are_refused_with_a_reason(counts, reason):
    with pytest.raises(rlelib.RLEError, match=reason):
        rlelib.parse_counts({"size": [5, 7], "counts": counts})


def test_size_must_match_and_lists_need_permission():
    good = rlelib.encode(np.ones((5, 7), bool))
    with pytest.raises(rlelib.RLEError, match=r"size is \[5, 7\] but the image is \[7, 5\]"):
        rlelib.parse_counts(good, height=7, width=5)
    with pytest.raises(rlelib.RLEError, match="compressed string"):
        rlelib.parse_counts({"size": [5, 7], "counts": [35]})
    for size in ([5], [0, 7], [5.0, 7], "5x7", [True, 7]):
        with pytest.raises(rlelib.RLEError, match="size"):
            rlelib.parse_counts({"size": size, "counts": good["counts"]})


def test_smallest_instance_wins_regardless_of_order():
    big = np.zeros((6, 6), bool)
    big[:, :] = True
    small = np.zeros((6, 6), bool)
    small[2:4, 2:4] = True
    for order in ([(1, big), (2, small)], [(2, small), (1, big)]):
        result = semantic_map([(label, rlelib.encode(m)) for label, m in order], 6, 6)
        assert result[2, 2] == 2 and result[0, 0] == 1
        assert (result == 2).sum() == 4
        assert np.array_equal(result, semantic_map_from_arrays(order))


def test_equal_areas_later_instance_wins_and_background_is_zero():
    a = np.zeros((4, 4), bool)
    a[0:2, 0:2] = True
    b = np.zeros((4, 4), bool)
    b[1:3, 1:3] = True
    result = semantic_map([(3, rlelib.encode(a)), (5, rlelib.encode(b))], 4, 4)
    assert result[1, 1] == 5 and result[0, 0] == 3 and result[3, 3] == 0
    result = semantic_map([(5, rlelib.encode(b)), (3, rlelib.encode(a))], 4, 4)
    assert result[1, 1] == 3
