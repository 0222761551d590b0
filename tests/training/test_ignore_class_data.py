"""The project's ignore class in training data: it is no model class, and its pixels
are 255 in the masks the trainer gets (left out of the loss and of the metrics)."""
from __future__ import annotations

import numpy as np
import pytest

from annotator import services as annotator_services
from annotator.selectors import mask_semantic_map
from projects import services as project_services
from projects.models import Asset, LabelClass
from tests.training.conftest import TINY_SEGFORMER, labelled_project
from training import services as training_services
from training.modeling.metrics import ConfusionMatrix
from training.models import TrainingRun, TrainingWorkflow

pytestmark = pytest.mark.django_db


def test_ignore_pixels_are_255_and_the_ignore_class_is_no_model_class():
    project = labelled_project(images=3, size=32, val_every=0)
    names = list(LabelClass.objects.filter(project=project).order_by("index").values_list("name", flat=True))
    void = project_services.label_class_create(project=project, name="void", is_ignore=True)
    asset = Asset.objects.filter(project=project).order_by("id").first()
    before = mask_semantic_map(asset=asset)
    instances = [(LabelClass.objects.get(pk=i["class_id"]), annotator_services.rlelib.decode(i["rle"]))
                 for i in asset.mask_set.revision.instances]
    border = np.zeros(before.shape, bool)
    border[:, :4] = True
    annotator_services.mask_set_replace_from_arrays(asset=asset, user=None,
                                                    instances=[*instances, (void, border)])
    workflow = TrainingWorkflow.objects.create(project=project, name="w", config=TINY_SEGFORMER)
    run = TrainingRun.objects.create(project=project, workflow=workflow, config=TINY_SEGFORMER,
                                     val_fraction=0.34)
    data = training_services._collect_data(run)
    assert [c["name"] for c in data.classes] == names  # no "void"
    pairs = {pk: pair for pk, pair in zip(data.ids["train"] + data.ids["val"], data.train + data.val,
                                          strict=False)}
    mask = pairs[asset.id][1]
    # under the shared overlap rule (smallest on top) an object smaller than the ignore
    # region keeps its pixels; everything else in the region is 255
    assert (mask[border & (before == 0)] == 255).all() and (mask == 255).sum() >= (border & (before == 0)).sum()
    assert set(np.unique(mask[border])) <= {255, *np.unique(before[border]).tolist()}
    assert np.array_equal(mask[~border], before[~border])  # the other labels are unchanged
    assert mask[~border].max() <= len(names)
    matrix = ConfusionMatrix(len(names) + 1)
    matrix.update(np.zeros_like(mask), mask)
    assert matrix.matrix.sum() == (mask != 255).sum() < mask.size
