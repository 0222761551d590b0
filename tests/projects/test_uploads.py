"""Uploading images: validation of each file, de-duplication, nothing left behind."""
import io
import struct
import zlib

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from projects.models import Asset
from tests import factories

pytestmark = pytest.mark.django_db


def _upload(client, project, *files):
    return client.post(f"/api/v1/projects/{project.id}/assets/", {"files": list(files)},
                       format="multipart")


def _stored_files() -> set[str]:
    found, stack = set(), [""]
    while stack:
        base = stack.pop()
        dirs, files = default_storage.listdir(base) if default_storage.exists(base or ".") else ([], [])
        found |= {f"{base}/{f}".lstrip("/") for f in files}
        stack += [f"{base}/{d}".lstrip("/") for d in dirs]
    return found


def _huge_png(width: int, height: int) -> bytes:
    """A tiny file whose header declares width x height pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * width
    idat = zlib.compress(row * 16, 9)  # only a few rows: still refused from the header alone
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _truncated_jpeg() -> bytes:
    image = Image.open(io.BytesIO(factories.png_bytes(200, 150, seed=1)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()[: len(out.getvalue()) // 2]


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("notes.png", b"this is plain text, not a picture\n" * 20, "not_an_image"),
        ("half.jpg", _truncated_jpeg(), "corrupt_image"),
        ("bomb.png", _huge_png(30000, 30000), "too_many_pixels"),
        ("empty.png", b"", "empty_file"),
    ],
)
def test_bad_upload_is_refused_and_leaves_nothing(client_for, name, data, code):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    before = _stored_files()

    response = _upload(client, project, SimpleUploadedFile(name, data))

    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert (error["file"], error["code"]) == (name, code)
    assert len(error["message"]) > 10
    assert Asset.objects.count() == 0
    assert _stored_files() == before


def test_many_files_in_one_request_good_ones_kept_bad_ones_reported(client_for):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    good = [SimpleUploadedFile(f"ok{i}.png", factories.png_bytes(40 + i, 30, seed=i)) for i in range(3)]
    bad = SimpleUploadedFile("bad.png", b"GIF89a-not-really")

    response = _upload(client, project, *good, bad)

    assert response.status_code == 207
    body = response.json()
    assert [a["name"] for a in body["created"]] == ["ok0.png", "ok1.png", "ok2.png"]
    assert [(a["width"], a["height"]) for a in body["created"]] == [(40, 30), (41, 30), (42, 30)]
    assert [e["file"] for e in body["errors"]] == ["bad.png"]
    assert Asset.objects.filter(project=project).count() == 3
    stored = Asset.objects.get(name="ok1.png")
    with stored.file.open("rb") as fh:
        assert fh.read() == factories.png_bytes(41, 30, seed=1)


def test_same_bytes_twice_are_deduplicated_within_a_project_only(client_for):
    project = factories.project_create()
    other = factories.project_create(owner=factories.owner_of(project))
    client = client_for(factories.owner_of(project))
    data = factories.png_bytes(seed=7)

    first = _upload(client, project, SimpleUploadedFile("a.png", data)).json()
    second = _upload(client, project, SimpleUploadedFile("b.png", data)).json()
    third = _upload(client, other, SimpleUploadedFile("c.png", data)).json()

    assert len(first["created"]) == 1 and second["created"] == []
    assert second["duplicates"] == [{"file": "b.png", "asset_id": first["created"][0]["id"]}]
    assert len(third["created"]) == 1
    assert Asset.objects.count() == 2


def test_exif_rotated_jpeg_is_stored_upright(client_for):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    image = Image.new("RGB", (60, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)

    body = _upload(client, project, SimpleUploadedFile("phone.jpg", out.getvalue())).json()

    assert (body["created"][0]["width"], body["created"][0]["height"]) == (20, 60)


def test_asset_list_filters_and_paginates_in_constant_queries(client_for, django_assert_max_num_queries):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    assets = [factories.asset_create(project, seed=i) for i in range(7)]
    Asset.objects.filter(pk__in=[a.pk for a in assets[:3]]).update(split="val", status="labeled")

    # pending one-time password, role, project, count, page: the same for any page size
    with django_assert_max_num_queries(5):
        page = client.get(f"/api/v1/projects/{project.id}/assets/?page_size=5").json()
    assert page["count"] == 7 and len(page["results"]) == 5 and page["next"]

    val = client.get(f"/api/v1/projects/{project.id}/assets/?split=val&status=labeled").json()
    assert sorted(a["id"] for a in val["results"]) == sorted(a.id for a in assets[:3])

    bad = client.get(f"/api/v1/projects/{project.id}/assets/?split=nope")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"


def test_asset_file_is_served_to_members(client_for):
    project = factories.project_create()
    asset = factories.asset_create(project, seed=3)
    client = client_for(factories.owner_of(project))

    response = client.get(f"/api/v1/assets/{asset.id}/file/")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == factories.png_bytes(seed=3)
