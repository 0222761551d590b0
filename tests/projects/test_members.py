"""Members and roles through the API: add by name, change a role, remove, create a local
account with a one-time password that must be changed at the first login, and the rule
that a project always keeps an owner. Role refusals for every route are walked by
tests/test_permissions.py; here the refusals specific to members."""
import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from common.models import PasswordChangeRequired
from projects.models import Membership, Role
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return factories.project_create(name="Team", annie="annotator", vera="viewer")


def _member(project, username):
    return Membership.objects.get(project=project, user__username=username)


def test_owner_adds_changes_and_removes_a_member(project, client_for):
    owner = client_for(factories.owner_of(project))
    factories.user_create("bob")
    added = owner.post(f"/api/v1/projects/{project.id}/members/", {"username": "bob", "role": "viewer"},
                       format="json")
    assert added.status_code == 201 and added.json()["role"] == "viewer"
    member_id = added.json()["id"]

    changed = owner.patch(f"/api/v1/projects/{project.id}/members/{member_id}/", {"role": "annotator"},
                          format="json")
    assert changed.status_code == 200 and changed.json() == {**added.json(), "role": "annotator"}
    assert Membership.objects.get(pk=member_id).role == Role.ANNOTATOR

    listed = owner.get(f"/api/v1/projects/{project.id}/members/").json()
    assert {m["username"]: m["role"] for m in listed} == {
        factories.owner_of(project).username: "owner", "annie": "annotator", "vera": "viewer",
        "bob": "annotator"}

    assert owner.delete(f"/api/v1/projects/{project.id}/members/{member_id}/").status_code == 204
    assert not Membership.objects.filter(pk=member_id).exists()
    assert get_user_model().objects.filter(username="bob").exists()  # the account stays


def test_bad_member_input_is_a_clear_error(project, client_for):
    owner = client_for(factories.owner_of(project))
    unknown = owner.post(f"/api/v1/projects/{project.id}/members/", {"username": "ghost", "role": "viewer"},
                         format="json")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_user"
    bad_role = owner.patch(f"/api/v1/projects/{project.id}/members/{_member(project, 'vera').id}/",
                           {"role": "admin"}, format="json")
    assert bad_role.status_code == 400 and "role" in bad_role.json()["error"]["details"]
    assert _member(project, "vera").role == Role.VIEWER


def test_member_of_another_project_is_not_found(project, client_for):
    other = factories.project_create(name="Other", stranger="viewer")
    owner = client_for(factories.owner_of(project))
    foreign = _member(other, "stranger").id
    assert owner.patch(f"/api/v1/projects/{project.id}/members/{foreign}/", {"role": "owner"},
                       format="json").status_code == 404
    assert owner.delete(f"/api/v1/projects/{project.id}/members/{foreign}/").status_code == 404
    assert _member(other, "stranger").role == Role.VIEWER


@pytest.mark.parametrize("username", ["annie", "vera"])
def test_only_owners_manage_members(project, client_for, username):
    client = client_for(get_user_model().objects.get(username=username))
    vera = _member(project, "vera").id
    factories.user_create("carl")
    refusals = [
        client.post(f"/api/v1/projects/{project.id}/members/", {"username": "carl", "role": "owner"},
                    format="json"),
        client.patch(f"/api/v1/projects/{project.id}/members/{vera}/", {"role": "owner"}, format="json"),
        client.delete(f"/api/v1/projects/{project.id}/members/{vera}/"),
        client.post(f"/api/v1/projects/{project.id}/members/new-user/", {"username": "dora", "role": "owner"},
                    format="json"),
    ]
    assert [r.status_code for r in refusals] == [403] * 4
    assert {r.json()["error"]["code"] for r in refusals} == {"forbidden"}
    assert Membership.objects.filter(project=project).count() == 3
    assert not get_user_model().objects.filter(username="dora").exists()


def test_the_last_owner_can_be_neither_demoted_nor_removed(project, client_for):
    owner_user = factories.owner_of(project)
    owner = client_for(owner_user)
    mine = _member(project, owner_user.username).id
    demoted = owner.patch(f"/api/v1/projects/{project.id}/members/{mine}/", {"role": "viewer"}, format="json")
    assert demoted.status_code == 409 and demoted.json()["error"]["code"] == "last_owner"
    removed = owner.delete(f"/api/v1/projects/{project.id}/members/{mine}/")
    assert removed.status_code == 409 and removed.json()["error"]["code"] == "last_owner"
    re_added = owner.post(f"/api/v1/projects/{project.id}/members/",
                          {"username": owner_user.username, "role": "annotator"}, format="json")
    assert re_added.status_code == 409
    assert _member(project, owner_user.username).role == Role.OWNER

    # With a second owner the first may step down.
    owner.patch(f"/api/v1/projects/{project.id}/members/{_member(project, 'annie').id}/",
                {"role": "owner"}, format="json")
    assert owner.patch(f"/api/v1/projects/{project.id}/members/{mine}/", {"role": "viewer"},
                       format="json").status_code == 200


def test_new_user_with_a_one_time_password_must_change_it_first(project, client_for, api):
    owner = client_for(factories.owner_of(project))
    created = owner.post(f"/api/v1/projects/{project.id}/members/new-user/",
                         {"username": "newbie", "role": "annotator"}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["member"]["username"] == "newbie" and body["member"]["role"] == "annotator"
    one_time = body["one_time_password"]
    assert len(one_time) >= 12

    login = api.post("/api/v1/auth/login/", {"username": "newbie", "password": one_time}, format="json")
    assert login.status_code == 200 and login.json()["must_change_password"] is True
    refused = api.get(f"/api/v1/projects/{project.id}/")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "password_change_required"
    assert api.get("/api/v1/auth/me/").json()["must_change_password"] is True

    wrong = api.post("/api/v1/auth/password/", {"current_password": "nope", "new_password": "a-new-pass-1"},
                     format="json")
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_credentials"
    short = api.post("/api/v1/auth/password/", {"current_password": one_time, "new_password": "short"},
                     format="json")
    assert short.status_code == 400 and "new_password" in short.json()["error"]["details"]
    assert PasswordChangeRequired.objects.filter(user__username="newbie").exists()

    changed = api.post("/api/v1/auth/password/", {"current_password": one_time, "new_password": "a-new-pass-1"},
                       format="json")
    assert changed.status_code == 200 and changed.json()["must_change_password"] is False
    # The session survives the change, and the project is reachable with the annotator role.
    project_body = api.get(f"/api/v1/projects/{project.id}/").json()
    assert project_body["role"] == "annotator"
    api.post("/api/v1/auth/logout/")
    assert api.post("/api/v1/auth/login/", {"username": "newbie", "password": one_time},
                    format="json").status_code == 400
    assert api.post("/api/v1/auth/login/", {"username": "newbie", "password": "a-new-pass-1"},
                    format="json").json()["must_change_password"] is False


def test_new_user_refusals_leave_nothing_behind(project, client_for, settings):
    owner = client_for(factories.owner_of(project))
    url = f"/api/v1/projects/{project.id}/members/new-user/"
    taken = owner.post(url, {"username": "VERA", "role": "viewer"}, format="json")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "user_exists"
    bad_name = owner.post(url, {"username": "no spaces/here", "role": "viewer"}, format="json")
    assert bad_name.status_code == 400 and "username" in bad_name.json()["error"]["details"]
    bad_role = owner.post(url, {"username": "okname", "role": "boss"}, format="json")
    assert bad_role.status_code == 400

    settings.TESSERA_LOCAL_ACCOUNTS = False  # users come from an identity provider
    idp = owner.post(url, {"username": "okname", "role": "viewer"}, format="json")
    assert idp.status_code == 403 and idp.json()["error"]["code"] == "local_accounts_disabled"
    assert owner.get("/api/v1/auth/me/").json()["local_accounts"] is False
    assert not get_user_model().objects.filter(username__in=["okname", "no spaces/here"]).exists()
    assert Membership.objects.filter(project=project).count() == 3


def test_project_detail_tells_the_caller_their_role(project, client_for):
    for username, role in (("annie", "annotator"), ("vera", "viewer")):
        client = client_for(get_user_model().objects.get(username=username))
        assert client.get(f"/api/v1/projects/{project.id}/").json()["role"] == role
        assert {p["id"]: p["role"] for p in client.get("/api/v1/projects/").json()["results"]} == {
            project.id: role}


@pytest.mark.django_db(transaction=True)
def test_a_pending_one_time_password_also_closes_the_live_stream(client_for):
    from config.asgi import application
    from training.models import TrainingRun, TrainingWorkflow

    project = factories.project_create(name="Stream")
    workflow = TrainingWorkflow.objects.create(project=project, name="wf", config={"steps": 1})
    run = TrainingRun.objects.create(project=project, workflow=workflow, config=workflow.config)
    created = client_for(factories.owner_of(project)).post(
        f"/api/v1/projects/{project.id}/members/new-user/", {"username": "fresh", "role": "viewer"},
        format="json").json()
    user = get_user_model().objects.get(username=created["member"]["username"])
    token = Token.objects.create(user=user).key

    async def attempt() -> bool:
        communicator = WebsocketCommunicator(application, f"/ws/trainings/{run.id}/?token={token}",
                                             headers=[(b"origin", b"http://127.0.0.1:8000")])
        connected, _ = await communicator.connect(timeout=10)
        await communicator.disconnect()
        return connected

    assert asyncio.run(attempt()) is False
    PasswordChangeRequired.objects.filter(user=user).delete()  # the password was changed
    assert asyncio.run(attempt()) is True
