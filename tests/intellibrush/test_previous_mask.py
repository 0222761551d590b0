"""IntelliBrush ``previous_mask`` goes through the checked RLE codec (issue 15.9): counts
that cover fewer or more pixels than H x W are a 400 (raw pycocotools would decode them
into uninitialized memory), and a valid all-zero mask is not a 500."""
from __future__ import annotations

import numpy as np
import pytest

from annotator.formats import rle as rlelib
from projects import services as project_services
from projects.synthetic import make_sample
from tests import factories
from tests.annotator.helpers import png

pytestmark = pytest.mark.django_db


@pytest.fixture
def fallback_click(client_for, settings, tmp_path, monkeypatch):
    """An asset and a poster for clicks answered by the classical fallback (no weights)."""
    settings.TESSERA_SAM_MODEL = "vit_b"
    settings.TESSERA_WEIGHTS_DIR = str(tmp_path / "empty-weights")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    sample = make_sample(9040, width=64, height=48)
    asset = project_services.asset_create_from_bytes(project=project, user=None, name="s.png",
                                                     data=png(sample.image))
    url = f"/api/v1/assets/{asset.id}/intellibrush/"
    return lambda body: client.post(url, body, format="json")


def test_short_or_long_counts_are_refused(fallback_click) -> None:
    full = rlelib.encode(np.ones((48, 64), bool))
    for counts in ([10, 20], [0, 48 * 64 + 5], [48 * 64 - 1]):  # below, above, below H x W
        rle = {"size": [48, 64], "counts": rlelib.counts_to_string(counts)}
        response = fallback_click({"points": [[10, 10, 1]], "previous_mask": rle})
        assert response.status_code == 400, (counts, response.content)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert "runs cover" in error["details"]["previous_mask"][0]
    wrong_size = fallback_click({"points": [[10, 10, 1]],
                                 "previous_mask": {"size": [47, 64], "counts": full["counts"]}})
    assert wrong_size.status_code == 400
    assert "[48, 64]" in wrong_size.json()["error"]["details"]["previous_mask"][0]


def test_valid_all_zero_previous_mask(fallback_click) -> None:
    empty = rlelib.encode(np.zeros((48, 64), bool))
    with_click = fallback_click({"points": [[32, 24, 1]], "previous_mask": empty})
    assert with_click.status_code == 200, with_click.content
    assert with_click.json()["method"] == "fallback"
    alone = fallback_click({"previous_mask": empty})
    assert alone.status_code == 400
    assert "non-empty previous mask" in alone.json()["error"]["details"]["points"][0]
    # the same request answers the same mask (no uninitialized memory involved)
    again = fallback_click({"points": [[32, 24, 1]], "previous_mask": empty})
    assert again.json()["rle"] == with_click.json()["rle"]


def test_exclude_clicks_over_the_whole_prior_answer_an_empty_mask(fallback_click) -> None:
    prior = np.zeros((48, 64), bool)
    prior[20:22, 30:32] = True
    response = fallback_click({"points": [[30, 20, 0], [31, 21, 0]],
                               "previous_mask": rlelib.encode(prior)})
    assert response.status_code == 200, response.content
