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


def test_make_synthetic_writes_images_masks_and_classes(tmp_path):
    import numpy as np
    from PIL import Image

    from projects.synthetic import make_dataset

    call_command("make_synthetic", str(tmp_path), count=3, seed=5, width=40, height=30)

    expected = make_dataset(3, seed=5, sizes=[(40, 30)])
    for i, sample in enumerate(expected):
        assert np.array_equal(np.array(Image.open(tmp_path / "images" / f"{i:05d}.png")), sample.image)
        assert np.array_equal(np.array(Image.open(tmp_path / "masks" / f"{i:05d}.png")), sample.semantic)
    assert (tmp_path / "classes.txt").read_text().split() == [n for n, _ in SYNTHETIC_CLASSES]
