"""Property tests: export a project, import the zip into a new project, and get the
same masks back pixel for pixel, for every format. Masks include holes, touching and
overlapping objects, one-pixel objects and odd image sizes."""
from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotator import services
from annotator.formats import rle as rlelib
from annotator.models import MaskSet
from annotator.selectors import class_labels, mask_semantic_map
from projects import services as project_services
from projects.models import Asset, Job, LabelClass
from tests import factories
from tests.annotator.helpers import png, rgb_image

pytestmark = pytest.mark.django_db
CLASS_NAMES = [("road", "#808080"), ("car", "#ff0000"), ("person", "#00ff00")]


@st.composite
def instance_mask(draw, h: int, w: int) -> np.ndarray:
    kind = draw(st.sampled_from(["pixel", "ring", "random", "box"]))
    mask = np.zeros((h, w), bool)
    y, x = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
    if kind == "pixel":
        mask[y, x] = True
    elif kind == "ring":  # a box with a hole when it is big enough
        y1, x1 = draw(st.integers(y, h - 1)), draw(st.integers(x, w - 1))
        mask[y:y1 + 1, x:x1 + 1] = True
        if y1 - y >= 2 and x1 - x >= 2:
            mask[y + 1:y1, x + 1:x1] = False
    elif kind == "box":  # boxes of neighbouring objects touch and overlap freely
        y1, x1 = draw(st.integers(y, h - 1)), draw(st.integers(x, w - 1))
        mask[y:y1 + 1, x:x1 + 1] = True
    else:
        seed = draw(st.integers(0, 2**16))
        mask = np.random.default_rng(seed).random((h, w)) < 0.4
        mask[y, x] = True
    return mask


@st.composite
def image_spec(draw):
    h, w = draw(st.integers(1, 21)), draw(st.integers(1, 21))
    n = draw(st.integers(0, 4))
    instances = [(draw(st.integers(0, 2)), draw(instance_mask(h, w))) for _ in range(n)]
    split = draw(st.sampled_from(["train", "val", "test"]))
    return h, w, split, instances


@pytest.fixture
def user():
    """One user for every example: password hashing costs ~1 s per user here."""
    return factories.user_create()


def _make_source(user, specs) -> tuple:
    project = project_services.project_create(user=user, name="source")
    classes = [project_services.label_class_create(project=project, name=n, color=c)
               for n, c in CLASS_NAMES]
    assets = []
    for i, (h, w, split, instances) in enumerate(specs):
        asset = project_services.asset_create_from_bytes(
            project=project, user=None, name=f"im{i}_{w}x{h}.png", data=png(rgb_image(w, h, seed=i)),
            split=split)
        services.mask_set_replace_from_arrays(asset=asset, user=None,
                                              instances=[(classes[c], m) for c, m in instances])
        assets.append(asset)
    return project, assets


def _export_import(user, project, format: str):
    out = io.BytesIO()
    services.export_write(out=out, project=project, format=format)
    target = project_services.project_create(user=user, name="target")
    job = services.import_start(project=target, user=user, name="export.zip", data=out.getvalue(),
                                format=format)
    services.import_run(job=job)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.errors
    return target, job


def _instances(asset: Asset) -> list[tuple[str, np.ndarray]]:
    names = dict(LabelClass.objects.filter(project=asset.project).values_list("id", "name"))
    return [(names[i["class_id"]], rlelib.decode(i["rle"]))
            for i in MaskSet.objects.get(asset=asset).revision.instances]


def _semantic_by_name(asset: Asset) -> np.ndarray:
    labels = class_labels(project=asset.project)
    names = dict(LabelClass.objects.filter(project=asset.project).values_list("id", "name"))
    semantic = mask_semantic_map(asset=asset, labels=labels)
    out = np.zeros(semantic.shape, np.uint8)
    for class_id, label in labels.items():
        out[semantic == label] = 1 + [n for n, _ in CLASS_NAMES].index(names[class_id])
    return out


HYPOTHESIS = settings(max_examples=25, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture,
                                             HealthCheck.too_slow])


@pytest.mark.parametrize("format", ["coco", "labelme", "cvat", "label_studio", "roboflow_coco"])
@HYPOTHESIS
@given(specs=st.lists(image_spec(), min_size=1, max_size=3))
def test_instance_formats_round_trip_exactly(user, format, specs):
    source, assets = _make_source(user, specs)
    target, job = _export_import(user, source, format)
    assert job.result["images"] == len(specs)
    for asset, (h, w, split, instances) in zip(assets, specs, strict=True):
        copy = Asset.objects.get(project=target, name=asset.name)
        assert (copy.width, copy.height, copy.split, copy.sha256) == (w, h, split, asset.sha256)
        if not instances:  # COCO cannot say "labeled, nothing here"; LabelMe, CVAT, Label Studio can
            assert MaskSet.objects.filter(asset=copy).exists() == (format not in ("coco", "roboflow_coco"))
            continue
        got = _instances(copy)
        assert [n for n, _ in got] == [CLASS_NAMES[c][0] for c, _ in instances]
        for (_, mask), (_, expected) in zip(got, instances, strict=True):
            assert np.array_equal(mask, expected)
    # no class comes from nowhere (Roboflow's root category is none)
    assert set(LabelClass.objects.filter(project=target).values_list("name", flat=True)) <= {
        n for n, _ in CLASS_NAMES}
    if format == "coco":  # COCO categories carry the colour; LabelMe has no place for it
        colors = dict(LabelClass.objects.filter(project=target).values_list("name", "color"))
        for name, color in CLASS_NAMES:
            assert colors.get(name, color) == color


@pytest.mark.parametrize("format", ["png", "semantic_png"])  # index PNGs; VOC-style palette PNGs
@HYPOTHESIS
@given(specs=st.lists(image_spec(), min_size=1, max_size=3))
def test_class_map_formats_round_trip_the_class_map(user, format, specs):
    source, assets = _make_source(user, specs)
    target, _ = _export_import(user, source, format)
    for asset, (h, w, split, _) in zip(assets, specs, strict=True):
        copy = Asset.objects.get(project=target, name=asset.name)
        assert (copy.width, copy.height, copy.split) == (w, h, split)
        assert np.array_equal(_semantic_by_name(copy), _semantic_by_name(asset))
    colors = dict(LabelClass.objects.filter(project=target).values_list("name", "color"))
    assert all(colors[name] == dict(CLASS_NAMES)[name] for name in colors)
