"""The project's job list (a stuck job is visible) and job cancellation, without a worker."""
from __future__ import annotations

import pytest

from projects import services
from projects.models import Job, Role
from tests import factories

pytestmark = pytest.mark.django_db


def test_job_list_filters_and_stays_constant_in_queries(client_for, django_assert_max_num_queries):
    project = factories.project_create(jv=Role.VIEWER)
    owner = factories.owner_of(project)
    jobs = [services.job_create(project=project, user=owner, kind=kind) for kind in ("import", "export", "import")]
    services.job_finish(job_id=jobs[0].id, result={"images": 1})
    client = client_for(owner)
    url = f"/api/v1/projects/{project.id}/jobs/"
    assert [j["id"] for j in client.get(url).json()["results"]] == [jobs[2].id, jobs[1].id, jobs[0].id]
    assert [j["id"] for j in client.get(f"{url}?kind=import&active=true").json()["results"]] == [jobs[2].id]
    assert [j["id"] for j in client.get(f"{url}?active=false").json()["results"]] == [jobs[0].id]
    assert client.get(f"{url}?active=maybe").status_code == 400
    for _ in range(20):
        services.job_create(project=project, user=owner, kind="import")
    with django_assert_max_num_queries(6):
        assert client.get(url).status_code == 200
    viewer = client_for(project.memberships.get(role=Role.VIEWER).user)
    assert viewer.get(url).status_code == 200  # viewers see jobs
    assert client_for(factories.user_create()).get(url).status_code == 404


def test_cancel_stops_a_running_job_and_a_redelivered_task(client_for):
    project = factories.project_create()
    owner = factories.owner_of(project)
    job = services.job_create(project=project, user=owner, kind="import")
    assert services.job_attempt(job_id=job.id, max_attempts=2, crashed_message="x") is not None
    assert services.job_progress(job_id=job.id, progress=0.5, message="working")
    response = client_for(owner).post(f"/api/v1/jobs/{job.id}/cancel/")
    assert response.status_code == 200 and response.json()["message"] == f"Cancelled by {owner.username}."
    # the running task sees it at its next progress step; a redelivery does not start
    assert not services.job_progress(job_id=job.id, progress=0.6, message="still working")
    assert services.job_attempt(job_id=job.id, max_attempts=2, crashed_message="x") is None
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.progress == 0.5


def test_attempts_are_counted_and_end_in_a_readable_failure():
    project = factories.project_create()
    job = services.job_create(project=project, user=None, kind="import")
    for _ in range(2):
        assert services.job_attempt(job_id=job.id, max_attempts=2, crashed_message="crashed twice") is not None
    assert services.job_attempt(job_id=job.id, max_attempts=2, crashed_message="crashed twice") is None
    job.refresh_from_db()
    assert (job.status, job.message, job.params["attempts"]) == (Job.Status.FAILED, "crashed twice", 2)
    assert job.errors == [{"code": "worker_crashed", "message": "crashed twice", "where": ""}]
