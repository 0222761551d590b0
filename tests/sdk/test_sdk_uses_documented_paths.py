"""The SDK keeps to the public API: every endpoint path written in sdk/tessera/ is a path
of the OpenAPI schema (so a server change that drops or renames one fails here, not in a
user's pipeline)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

SDK = Path(__file__).resolve().parents[2] / "sdk" / "tessera"
ROOTS = "projects|assets|jobs|workflows|trainings|training|artifacts|deployments|auth|health"
LITERAL = re.compile(rf'f?"((?:{ROOTS})/[^"\s]*)"')


def _normalise(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.removeprefix("/api/v1/"))


def sdk_paths() -> set[str]:
    found = set()
    for source in SDK.glob("*.py"):
        found |= {_normalise(m) for m in LITERAL.findall(source.read_text())}
    return found


@pytest.mark.django_db
def test_every_sdk_path_is_in_the_openapi_schema(client_for):
    from tests import factories

    schema = client_for(factories.user_create()).get("/api/v1/schema/?format=json").json()
    documented = {_normalise(p) for p in schema["paths"]}
    used = sdk_paths()
    assert len(used) >= 25  # the scan found the client's endpoints
    assert used - documented == set()
