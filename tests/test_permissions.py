"""Walks every project-scoped API endpoint (found from the URL resolver, so new ones are
covered automatically) as a stranger and as a viewer trying to write, and expects refusal.

An endpoint whose URL takes an id this test cannot build fails loudly: add a builder to
`BUILDERS` so the object really exists when the stranger knocks."""
from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from projects import services
from projects.models import Job, Membership, Role
from tests import factories

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")
# URL kwargs -> how to build the object for the project under test.
BUILDERS: dict[str, Callable] = {
    "project_id": lambda p: p.id,
    "asset_id": lambda p: factories.asset_create(p, seed=901).id,
    "class_id": lambda p: factories.label_class_create(p, name="cls").id,
    "member_id": lambda p: Membership.objects.filter(project=p).first().id,
    "job_id": lambda p: services.job_create(project=p, user=None, kind="test").id,
    "video_id": lambda p: _video(p),
    "workflow_id": lambda p: _workflow(p).id,
    "run_id": lambda p: _run(p).id,
    "artifact_id": lambda p: _artifact(p).id,
    "revision_id": lambda p: _mask_revision(p),
    "deployment_id": lambda p: _deployment(p).id,
    "key_id": lambda p: _api_key(p).id,
}
UNSCOPED = {"auth-token", "auth-login", "auth-logout", "auth-me", "auth-csrf", "auth-password",
            "auth-tokens", "auth-token-detail",  # the signed-in user's own tokens
            "health", "health-live", "health-ready", "schema", "docs", "redoc", "project-list",
            "intellibrush-decoder",  # the SAM decoder model: same for everyone, no project data
            "training-models"}  # the catalogue of model families


def _video(project):
    from projects.models import Video

    return Video.objects.create(project=project, name="v.mp4", file="videos/v.mp4", sha256="x").id


def _mask_revision(project):
    import numpy as np

    from annotator.services import mask_set_replace_from_arrays

    asset = factories.asset_create(project, width=8, height=6, seed=902)
    label_class = factories.label_class_create(project, name="revcls")
    mask = np.zeros((6, 8), bool)
    mask[1:3, 2:5] = True
    return mask_set_replace_from_arrays(asset=asset, user=None, instances=[(label_class, mask)]).revision_id


def _workflow(project):
    from training.services import workflow_create

    config = {"family": "segformer", "variant": "tiny", "resolution": [64, 64], "steps": 10,
              "pretrained": "none"}
    return workflow_create(project=project, user=None, name="wf", config=config)


def _run(project):
    from training.models import TrainingRun

    workflow = _workflow(project)
    return TrainingRun.objects.create(project=project, workflow=workflow, config=workflow.config)


def _artifact(project):
    from training.models import Artifact

    return Artifact.objects.create(project=project, run=_run(project), name="a", family="segformer",
                                   variant="tiny", storage_prefix="artifacts/none")


def _deployment(project):
    from deployments.models import Deployment

    return Deployment.objects.create(project=project, artifact=_artifact(project), name="d",
                                     status=Deployment.Status.READY)


def _api_key(project):
    from deployments.api_keys import api_key_create
    from deployments.models import Deployment

    deployment = Deployment.objects.filter(project=project).first() or _deployment(project)
    return api_key_create(deployment=deployment, user=None, name="k")[0]


def _iter_patterns(resolvers, prefix=""):
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            yield from _iter_patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def api_endpoints():
    found = []
    for route, pattern in _iter_patterns(get_resolver().url_patterns):
        view_class = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
        if not route.startswith("api/v1/") or view_class is None or pattern.name in UNSCOPED:
            continue
        kwargs = re.findall(r"<(?:\w+:)?(\w+)>", route)
        methods = [m for m in ("get", *WRITE_METHODS) if hasattr(view_class, m)]
        found.append((route, kwargs, methods))
    return found


def _url(route: str, ids: dict) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), route)


def test_every_scoped_endpoint_refuses_strangers_and_viewer_writes(client_for):
    endpoints = api_endpoints()
    assert len(endpoints) >= 10  # the walk really found the API
    project = factories.project_create(viewer_user=Role.VIEWER)
    stranger = client_for(factories.user_create("stranger"))
    viewer = client_for(Membership.objects.get(project=project, role=Role.VIEWER).user)
    missing = sorted({k for _, kwargs, _ in endpoints for k in kwargs} - BUILDERS.keys())
    assert not missing, f"add builders for URL kwargs {missing} to tests/test_permissions.py"

    ids = {k: build(project) for k, build in BUILDERS.items()}
    checked = 0
    for route, kwargs, methods in endpoints:
        url = _url(route, ids)
        if not kwargs:
            # A top-level list (runs, artifacts, deployments...) filtered to the user's
            # projects: a stranger sees none of this project's rows. Writes through it
            # name an object in the body and are covered by each app's own tests.
            listing = stranger.get(url)
            assert listing.status_code == 200, (url, listing.status_code)
            body = listing.json()
            assert (body.get("results", body) if isinstance(body, dict) else body) == [], url
            checked += 1
            continue
        for method in methods:
            response = getattr(stranger, method)(url, {}, format="json")
            assert response.status_code in (401, 403, 404), (method, url, response.status_code)
            checked += 1
            if method in WRITE_METHODS and route != "api/v1/projects/":
                response = getattr(viewer, method)(url, {}, format="json")
                assert response.status_code in (401, 403, 404, 405), (method, url, response.status_code)
    assert checked >= 20
    assert Job.objects.filter(project=project).count() >= 1  # builders ran against real rows


def test_anonymous_requests_are_refused(api):
    project = factories.project_create()
    for url in (f"/api/v1/projects/{project.id}/", f"/api/v1/projects/{project.id}/assets/",
                "/api/v1/projects/"):
        assert api.get(url).status_code in (401, 403)
