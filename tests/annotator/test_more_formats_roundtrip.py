"""Property tests for the newer formats: export a project through the format's writer,
import the zip into a new project through its reader, and get the same masks back
pixel for pixel (instances for CVAT, Label Studio and Roboflow COCO; the class map
for semantic PNG masks), the ignore class included."""
from __future__ import annotations

import io

import numpy as np
import pytest

from annotator import services
from annotator.formats.cvat import detect_cvat
from annotator.formats.label_studio import detect_label_studio
from annotator.formats.roboflow import detect_roboflow
from annotator.formats.semantic_png import detect_semantic_png
from annotator.selectors import mask_semantic_map
from projects import services as project_services
from projects.models import Asset, LabelClass
from tests import factories
from tests.annotator.helpers import unzip
from tests.annotator.test_roundtrip import (
    _make_source,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    """One user for every example: password hashing costs ~1 s per user here."""
    return factories.user_create()


@pytest.mark.parametrize("format", ["cvat", "label_studio", "roboflow_coco", "semantic_png"])
def test_the_ignore_class_round_trips(user, format):
    mask = np.zeros((12, 16), bool)
    mask[2:6, 3:9] = True
    border = np.zeros((12, 16), bool)
    border[9:, :] = True
    source, [asset] = _make_source(user, [(12, 16, "train", [(1, mask)])])
    ignore = project_services.label_class_create(project=source, name="void", color="#ffffff",
                                                 is_ignore=True)
    services.mask_set_replace_from_arrays(
        asset=asset, user=None,
        instances=[(LabelClass.objects.get(project=source, name="car"), mask), (ignore, border)])
    out = io.BytesIO()
    services.export_write(out=out, project=source, format=format)
    target = project_services.project_create(user=user, name="target")
    job = services.import_start(project=target, user=user, name="export.zip", data=out.getvalue(),
                                format=format, crowd_as_ignore=format == "roboflow_coco")
    services.import_run(job=job)
    copy = Asset.objects.get(project=target)
    assert LabelClass.objects.filter(project=target, is_ignore=True).count() == 1
    got = mask_semantic_map(asset=copy)
    assert (got[border] == 255).all() and (got[mask] != 0).all() and (got[~(mask | border)] == 0).all()


DETECTORS = {"cvat": detect_cvat, "label_studio": detect_label_studio,
             "roboflow_coco": detect_roboflow, "semantic_png": detect_semantic_png}


def test_each_detector_knows_its_own_export_and_no_other(user):
    mask = np.zeros((5, 7), bool)
    mask[1:3, 1:4] = True
    source, _ = _make_source(user, [(5, 7, "val", [(0, mask)])])
    for format in [*DETECTORS, "coco", "labelme", "png"]:
        files = unzip(b"".join(services.export_stream(project=source, format=format)))
        found = {name for name, detector in DETECTORS.items() if detector(files)}
        assert found == ({format} & set(DETECTORS)), format
