import pytest
from django.core.management import call_command

from projects.demo import DEMO_PASSWORD, DEMO_USERNAME
from projects.models import Asset, LabelClass, Project
from projects.synthetic import SYNTHETIC_CLASSES

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_a_loginable_user_and_a_filled_project_once(api, capsys):
    call_command("seed_demo", images=8, size=64)
    call_command("seed_demo", images=8, size=64)

    out = capsys.readouterr().out
    assert f"user: {DEMO_USERNAME}  password: {DEMO_PASSWORD}" in out
    [project] = Project.objects.all()
    assert [c.name for c in LabelClass.objects.filter(project=project)] == [n for n, _ in SYNTHETIC_CLASSES]
    assert Asset.objects.filter(project=project).count() == 8
    assert Asset.objects.filter(project=project, split="val").count() == 2
    login = api.post("/api/v1/auth/token/", {"username": DEMO_USERNAME, "password": DEMO_PASSWORD},
                     format="json")
    assert login.status_code == 200
