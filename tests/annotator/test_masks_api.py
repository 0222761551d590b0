"""Masks through the API: save (whole set, atomically), read, revisions, restore,
validation that changes nothing, roles, and the demo's in-memory save."""
import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotator.formats import rle as rlelib
from annotator.models import MaskRevision, MaskSet
from annotator.selectors import mask_semantic_map
from annotator.services import mask_set_replace_from_arrays
from projects.models import Asset, Membership, Role
from tests import factories

pytestmark = pytest.mark.django_db


def _setup(width=16, height=12):
    project = factories.project_create(ann_user=Role.ANNOTATOR, view_user=Role.VIEWER)
    asset = factories.asset_create(project, width=width, height=height)
    a = factories.label_class_create(project, name="road")
    b = factories.label_class_create(project, name="car")
    return project, asset, a, b


def _user(project, role):
    return Membership.objects.filter(project=project, role=role).first().user


def _box(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_put_then_get_returns_the_same_pixels_and_marks_labeled(client_for):
    project, asset, road, car = _setup()
    client = client_for(_user(project, Role.ANNOTATOR))
    big, small = _box(12, 16, 0, 12, 0, 16), _box(12, 16, 3, 5, 4, 9)
    body = {"masks": [{"class_id": road.id, "rle": rlelib.encode(big)},
                      {"class_id": car.id, "rle": rlelib.encode(small)}]}
    response = client.put(f"/api/v1/assets/{asset.id}/masks/", body, format="json")
    assert response.status_code == 200, response.json()
    got = client.get(f"/api/v1/assets/{asset.id}/masks/").json()
    assert got["revision"] == 1 and got["updated_by"] == "ann_user" and got["updated_at"]
    assert [m["class_id"] for m in got["masks"]] == [road.id, car.id]
    assert np.array_equal(rlelib.decode(got["masks"][1]["rle"]), small)
    assert Asset.objects.get(pk=asset.pk).status == "labeled"
    # the derived class map follows the documented rule: the small car stays visible
    semantic = mask_semantic_map(asset=asset)
    assert (semantic == car.index + 1).sum() == small.sum()
    assert (semantic == road.index + 1).sum() == big.sum() - small.sum()


@pytest.mark.parametrize(("mutate", "fragment"), [
    (lambda b, a, other: b["masks"][0].update(class_id=other.id), "not a class of this project"),
    (lambda b, a, other: b["masks"][1]["rle"].update(size=[12, 15]), "size is [12, 15]"),
    (lambda b, a, other: b["masks"][1]["rle"].update(counts="zzz"), "invalid character"),
    (lambda b, a, other: b["masks"][1]["rle"].update(counts="0:"), "runs cover"),
    (lambda b, a, other: b["masks"][0].pop("rle"), "'size' and 'counts'"),
])
def test_invalid_save_is_400_with_the_reason_and_changes_nothing(client_for, mutate, fragment):
    project, asset, road, car = _setup()
    other = factories.label_class_create(factories.project_create(), name="elsewhere")
    client = client_for(_user(project, Role.ANNOTATOR))
    first = {"masks": [{"class_id": road.id, "rle": rlelib.encode(_box(12, 16, 0, 2, 0, 2))}]}
    assert client.put(f"/api/v1/assets/{asset.id}/masks/", first, format="json").status_code == 200
    body = {"masks": [{"class_id": road.id, "rle": rlelib.encode(_box(12, 16, 0, 4, 0, 4))},
                      {"class_id": car.id, "rle": rlelib.encode(_box(12, 16, 5, 9, 5, 9))}]}
    mutate(body, asset, other)
    response = client.put(f"/api/v1/assets/{asset.id}/masks/", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_masks" and fragment in str(error["details"])
    current = client.get(f"/api/v1/assets/{asset.id}/masks/").json()
    assert current["revision"] == 1 and current["masks"] == first["masks"]
    assert MaskRevision.objects.filter(asset=asset).count() == 1


def test_revisions_restore_and_conflict(client_for):
    project, asset, road, car = _setup()
    client = client_for(_user(project, Role.ANNOTATOR))
    url = f"/api/v1/assets/{asset.id}/masks/"
    states = [[{"class_id": road.id, "rle": rlelib.encode(_box(12, 16, 0, k + 1, 0, k + 1))}]
              for k in range(3)]
    for k, masks in enumerate(states):
        response = client.put(url, {"masks": masks, "base_revision": k}, format="json")
        assert response.status_code == 200, response.json()
    stale = client.put(url, {"masks": [], "base_revision": 1}, format="json")
    assert stale.status_code == 409 and stale.json()["error"]["details"]["current_revision"] == 3

    listing = client.get(f"{url}revisions/").json()["results"]
    assert [r["number"] for r in listing] == [3, 2, 1]
    first = listing[-1]
    detail = client.get(f"{url}revisions/{first['id']}/").json()
    assert detail["masks"] == states[0]

    restored = client.post(f"{url}revisions/{first['id']}/restore/")
    assert restored.status_code == 200
    assert restored.json()["revision"] == 4 and restored.json()["masks"] == states[0]
    newest = client.get(f"{url}revisions/").json()["results"][0]
    assert newest["source"] == "restore" and newest["restored_from"] == 1

    empty = client.put(url, {"masks": []}, format="json").json()
    assert empty["masks"] == [] and empty["revision"] == 5


def test_roles_viewer_reads_but_cannot_write(client_for):
    project, asset, road, _ = _setup()
    viewer = client_for(_user(project, Role.VIEWER))
    url = f"/api/v1/assets/{asset.id}/masks/"
    assert viewer.get(url).json()["masks"] == []
    body = {"masks": [{"class_id": road.id, "rle": rlelib.encode(_box(12, 16, 0, 3, 0, 3))}]}
    assert viewer.put(url, body, format="json").status_code == 403
    stranger = client_for(factories.user_create())
    assert stranger.get(url).status_code == 404
    assert not MaskSet.objects.filter(asset=asset).exists()


def test_demo_save_from_arrays_and_query_count():
    project, asset, road, car = _setup()
    masks = [(road, _box(12, 16, 0, 6, 0, 16)), (car, _box(12, 16, 2, 3, 2, 3))]
    with CaptureQueriesContext(connection) as queries:
        mask_set = mask_set_replace_from_arrays(asset=asset, user=None, instances=masks)
    assert len(queries) <= 12
    assert mask_set.revision.source == "seed" and mask_set.revision.instance_count == 2
    with pytest.raises(Exception, match="asset is"):
        mask_set_replace_from_arrays(asset=asset, user=None, instances=[(road, np.ones((3, 3), bool))])
