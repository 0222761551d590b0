"""Checks on the code itself: lint clean, migrations in step with the models, the
OpenAPI schema generates without errors."""
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_migrations_match_models():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_openapi_schema_generates(client_for):
    from tests import factories

    response = client_for(factories.user_create()).get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/projects/{project_id}/assets/" in paths
    assert "/api/v1/health/" in paths
    # Every view's nested Input gets a component of its own (no silent name collisions).
    components = response.json()["components"]["schemas"]
    assert {"ProjectListCreateInput", "ClassListCreateInput", "AssetMasksInput"} <= components.keys()
    assert components["ProjectListCreateInput"]["properties"].keys() >= {"name", "type"}
