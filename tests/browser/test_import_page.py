"""The import page in Chromium (issue 16.6): the detected format, errors and repairs
listed with their place, "Import the rest", and a wrong explicit format answered with
the format the file looks like."""
from __future__ import annotations

import json
import re

from tests.annotator.helpers import png, rgb_image
from tests.annotator.test_tolerant_import import _labelme, _shape, _street_zip


def test_import_page_reports_and_imports_the_rest(page, login, shot, tmp_path):
    pg = page
    broken = _labelme("other.png", [_shape("car", [[1, 1], [5, 1], [5, 5]]),
                                    _shape("car", [[1, 1], [5, 1], [5, 5]], "banana")], 40, 30)
    upload = tmp_path / "labelme-set.zip"
    upload.write_bytes(_street_zip({"train/other.json": json.dumps(broken).encode(),
                                    "train/other.png": png(rgb_image(40, 30, seed=8))}))
    login(pg)
    pg.get_by_label("Name").fill("Import page")
    pg.get_by_role("button", name="Create project").click()
    pg.wait_for_url(re.compile(r".*/projects/\d+$"))
    project_id = int(pg.url.rstrip("/").rsplit("/", 1)[1])
    pg.goto(f"/projects/{project_id}/data")
    form = pg.get_by_role("form", name="Import annotations")
    assert form.locator("select[name=import-format]").input_value() == ""  # detect
    form.locator("input[name=import-file]").set_input_files(str(upload))
    form.get_by_role("button", name="Import", exact=True).click()

    errors = form.get_by_label("Errors")
    errors.wait_for()
    assert "train/other.json: shapes[1]" in errors.inner_text()
    assert "Unknown shape_type 'banana'" in errors.inner_text()
    assert "Format: LabelMe (detected:" in form.locator(".import-format").inner_text()
    assert "{" not in form.locator(".import-report").inner_text()  # no raw JSON
    shot(pg, "refused-with-errors")

    form.get_by_role("button", name="Import the rest").click()
    counts = form.locator(".import-counts")
    counts.wait_for()
    assert counts.inner_text() == "Imported 4 objects on 1 image · 4 repaired · 5 skipped · 1 left out"
    assert "Format: LabelMe (detected:" in form.locator(".import-format").inner_text()
    repaired = form.get_by_label("Repaired").inner_text()
    assert "val/street.json: shapes[0]" in repaired and "by up to 0.38 px" in repaired
    assert "train/other.json: shapes[1]" in form.get_by_label("Left out").inner_text()
    shot(pg, "imported-the-rest")

    form.locator("select[name=import-format]").select_option("coco")
    form.get_by_role("button", name="Import", exact=True).click()
    alert = form.get_by_role("alert")
    alert.wait_for()
    assert "This upload looks like LabelMe, not COCO" in alert.inner_text()
    assert form.get_by_role("button", name="Import as LabelMe").is_visible()
    shot(pg, "wrong-format")
    assert pg.console_errors == []  # type: ignore[attr-defined]
