"""Asynchronous work done by a real Celery worker process: thumbnails and video frames."""
import io

import av
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from projects.models import Asset, Video
from tests import factories
from tests.conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _video_bytes(fmt: str, codec: str, frames: int = 12, fps: int = 6) -> bytes:
    """A small synthetic video: a square moving right, one position per frame."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            pixels = np.full((48, 64, 3), 30, np.uint8)
            pixels[10:30, 4 * i:4 * i + 16] = (250, 200, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def test_thumbnail_is_made_by_the_worker(celery_worker_process, client_for):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    data = factories.png_bytes(600, 400, seed=5)

    body = client.post(f"/api/v1/projects/{project.id}/assets/",
                       {"files": [SimpleUploadedFile("big.png", data)]}, format="multipart").json()
    asset_id = body["created"][0]["id"]

    wait_until(lambda: Asset.objects.get(pk=asset_id).thumbnail, timeout=60)
    response = client.get(f"/api/v1/assets/{asset_id}/thumbnail/")
    assert response.status_code == 200
    thumb = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert thumb.size == (256, 171)


@pytest.mark.parametrize(("name", "fmt", "codec"), [("clip.mp4", "mp4", "libx264"),
                                                     ("clip.webm", "webm", "libvpx")])
def test_video_becomes_frames_that_know_their_time(celery_worker_process, client_for, name, fmt, codec):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    data = _video_bytes(fmt, codec)

    body = client.post(f"/api/v1/projects/{project.id}/assets/",
                       {"files": [SimpleUploadedFile(name, data)]}, format="multipart").json()
    [video] = body["videos"]
    assert body["created"] == [] and body["errors"] == []

    done = wait_until(lambda: client.get(f"/api/v1/videos/{video['id']}/").json()["status"]
                      in ("done", "failed"), timeout=90)
    assert done
    state = client.get(f"/api/v1/videos/{video['id']}/").json()
    assert state["status"] == "done", state["error"]
    assert state["progress"] == 1.0
    frames = client.get(f"/api/v1/projects/{project.id}/assets/?video={video['id']}").json()["results"]
    # 12 frames at 6 fps = 2 s; sampled at 2 fps -> t = 0, 0.5, 1.0, 1.5
    assert [f["timestamp_s"] for f in frames] == pytest.approx([0.0, 0.5, 1.0, 1.5], abs=0.01)
    assert [f["frame_index"] for f in frames] == [0, 3, 6, 9]
    assert all((f["width"], f["height"]) == (64, 48) for f in frames)
    assert Video.objects.get(pk=video["id"]).frame_count == 4


def test_corrupt_video_is_refused_at_upload(client_for):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    data = _video_bytes("mp4", "libx264")[:200]

    response = client.post(f"/api/v1/projects/{project.id}/assets/",
                           {"files": [SimpleUploadedFile("broken.mp4", data)]}, format="multipart")

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "corrupt_video"
    assert Video.objects.count() == 0
