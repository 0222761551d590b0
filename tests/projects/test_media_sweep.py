"""The media sweep (issue 15, item 5) queues again only what an upload failed to queue:
not what was handed to the broker and waits in a long queue (that would multiply the
queue every round). The whole outage through a real node: tests/test_faults.py."""
import pytest
from django.core.cache import cache

from projects import services
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_sweep_requeues_only_what_was_never_queued(django_capture_on_commit_callbacks):
    project = factories.project_create()
    with django_capture_on_commit_callbacks(execute=True):
        queued = factories.asset_create(project)
        lost = factories.asset_create(project)
    cache.delete(services._queued_key("thumbnail", lost.id))  # as when Redis was down

    assert services.media_sweep(older_than_s=0) == {"thumbnails": 1, "videos": 0}
    assert services.media_sweep(older_than_s=0) == {"thumbnails": 0, "videos": 0}
    assert cache.get(services._queued_key("thumbnail", queued.id)) == 1
    assert services.media_sweep(older_than_s=3600) == {"thumbnails": 0, "videos": 0}
