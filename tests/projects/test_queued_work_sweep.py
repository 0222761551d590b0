"""The beat's sweep (issue 15, item 5) queues again only what could not be queued:
not what was handed to the broker and waits in a long queue (that would multiply the
queue every round), nor a job a worker took already. The whole outage through a real
node: tests/test_faults.py."""
import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from config.celery_app import enqueue_on_commit, queued_key
from projects import services
from projects.models import Job
from tests import factories

pytestmark = pytest.mark.django_db

THUMBNAIL, IMPORT = "projects.tasks.asset_make_thumbnail", "annotator.tasks.dataset_import"


def test_the_sweep_requeues_only_what_was_never_queued(django_capture_on_commit_callbacks):
    project = factories.project_create()
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with django_capture_on_commit_callbacks(execute=True):
        queued = factories.asset_create(project)
        lost = factories.asset_create(project)
        job = services.job_create(project=project, user=None, kind="import")
        enqueue_on_commit(IMPORT, job.id)
    lost_job = services.job_create(project=project, user=None, kind="import")  # never queued
    taken = services.job_create(project=project, user=None, kind="import")
    Job.objects.filter(pk=taken.pk).update(status=Job.Status.RUNNING)
    cache.delete(queued_key(THUMBNAIL, lost.id))  # as when Redis was down
    waiting = broker.llen("default")

    assert services.queued_work_sweep(older_than_s=0) == {THUMBNAIL: 1, IMPORT: 1}
    assert broker.llen("default") == waiting + 2
    assert cache.get(queued_key(IMPORT, lost_job.id)) == 1
    assert services.queued_work_sweep(older_than_s=0) == {}
    assert cache.get(queued_key(THUMBNAIL, queued.id)) == 1
    cache.delete(queued_key(IMPORT, lost_job.id))
    assert services.queued_work_sweep(older_than_s=3600) == {}  # too young still
