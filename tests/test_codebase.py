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


APPS = ("common", "config", "projects", "annotator", "training", "deployments")
# Import circles still to be broken (issue 18, the other apps' items); none may be added.
KNOWN_CIRCLES = {
    frozenset({"projects.services", "projects.tasks"}),
    frozenset({"annotator.services", "annotator.tasks"}),
}


def _module_imports() -> dict[str, set[str]]:
    """Each module of the apps -> the modules of its own app it imports (anywhere in it,
    function-level imports included: a lazy import is still an arrow)."""
    import ast

    paths = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                parts = path.relative_to(ROOT).with_suffix("").parts
                paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def known(name: str) -> str | None:  # the module a dotted name lives in
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {known(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                targets |= {known(f"{base}.{alias.name}") for alias in node.names}
        app = module.split(".")[0]
        graph[module] = {t for t in targets if t and t != module and t.split(".")[0] == app}
    return graph


def _circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.add(frozenset(component))

    for node in graph:
        if node not in index:
            visit(node)
    return circles


def test_no_import_circles_between_the_modules_of_an_app():
    graph = _module_imports()
    assert {"deployments.worker", "training.runner", "projects.services"} <= graph.keys()
    assert "deployments.registry" in graph["deployments.predict"]  # a sanity check of the walk
    allowed = {c for c in _circles(graph) if {m.rpartition(".")[2] for m in c} == {"models", "signals"}}
    new = _circles(graph) - allowed - KNOWN_CIRCLES
    assert not new, [sorted(c) for c in new]


def test_the_circle_finder_finds_a_circle_and_only_it():
    assert _circles({"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}}) == {
        frozenset({"a.x", "a.y", "a.z"})}
