"""Files written by the formats' own tools (datumaro's exporters, label-studio-converter's
brush encoder, the datasets' documented layouts; see fixtures/make_tool_fixtures.py)
import through the real service, and the class map Tessera stores agrees with the one
the tool itself draws: >= 99% of the non-ignored pixels (polygon rasterizers differ
only at edges), ignore pixels exactly."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator import services
from annotator.selectors import mask_semantic_map
from projects.models import Asset, Job, LabelClass
from tests import factories

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "case.json").exists())


def _class_map_by_name(asset: Asset, names: list[str]) -> np.ndarray:
    """The stored class map with values renumbered as the reference's: classes[n - 1] = n,
    the ignore class 255, any other class 254."""
    stored = mask_semantic_map(asset=asset)
    out = np.zeros(stored.shape, np.uint8)
    for c in LabelClass.objects.filter(project=asset.project):
        label = 255 if c.is_ignore else c.index + 1
        out[stored == label] = 255 if c.is_ignore else names.index(c.name) + 1 if c.name in names else 254
    return out


@pytest.mark.parametrize("case", CASES)
def test_tool_written_files_import_as_the_tool_draws_them(case):
    folder = FIXTURES / case
    spec = json.loads((folder / "case.json").read_text())
    project = factories.project_create()
    job = services.import_start(project=project, user=factories.owner_of(project), name="upload.zip",
                                data=(folder / "upload.zip").read_bytes(), format=spec["format"],
                                **spec["options"])
    services.import_run(job=job)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.errors
    refs = sorted(folder.glob("*.ref.png"))
    assert job.result["images"] == len(refs)
    for ref_path in refs:
        stem = ref_path.name[:-len(".ref.png")]
        [asset] = [a for a in Asset.objects.filter(project=project)
                   if os.path.splitext(a.name)[0] in (stem, f"{stem}_leftImg8bit")]
        reference = np.asarray(Image.open(io.BytesIO(ref_path.read_bytes())))
        got = _class_map_by_name(asset, spec["classes"])
        assert got.shape == reference.shape
        counted = reference != 255
        agreement = (got[counted] == reference[counted]).mean()
        assert agreement >= 0.99, f"{case}: {agreement:.4f}"
        assert (got[~counted] == 255).all()
        present = set(np.unique(reference[counted])) - {0}
        assert present <= set(np.unique(got)), "every class the tool draws is there"


def test_repairs_and_skips_are_reported():
    """The CVAT polygon clicked past the border and the Label Studio polygon past the edge
    are clipped with a warning; Label Studio's "choices" result is skipped, not an error."""
    for case, where in (("cvat", "polygon[0]"), ("label_studio", "result[1]")):
        folder = FIXTURES / case
        spec = json.loads((folder / "case.json").read_text())
        from annotator.formats import READERS
        from annotator.formats.dataset import read_upload

        parsed = READERS[spec["format"]](read_upload("upload.zip", (folder / "upload.zip").read_bytes()))
        assert not parsed.problems
        assert any(where in w["where"] and "clipped" in w["message"] for w in parsed.warnings), parsed.warnings
    assert any("choices" in s["reason"] for s in parsed.skipped)
